# inference_bench: native serving engine vs ONNX Runtime (bench/ort_bench.js) on one exported DeepFM.
add_executable(inference_bench ${CMAKE_CURRENT_LIST_DIR}/inference_bench.cc
               ${CMAKE_CURRENT_LIST_DIR}/inference_bench_sparse.cc
               ${CMAKE_CURRENT_LIST_DIR}/inference_bench_util.cc)
target_link_libraries(inference_bench PRIVATE ctrps_worker_serve ctrps_worker_train ctrps_storage)
target_compile_definitions(inference_bench PRIVATE CTRPS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_compile_options(inference_bench PRIVATE -Wno-maybe-uninitialized)
