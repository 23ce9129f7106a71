// ExportOnnx in builds without libonnx (Debian's libonnx-dev).
#include "worker/serve/onnx_export.h"

namespace ctrps::worker::serve {

Status ExportOnnx(Model*, ps::EmbeddingClient*, const DataSpec&, const OnnxExportOptions&) {
  return Status::Unimplemented(
      "this ctrps was built without ONNX support: install libonnx-dev (launch/deps.sh) and "
      "rebuild");
}

}  // namespace ctrps::worker::serve
