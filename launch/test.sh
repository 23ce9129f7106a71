#!/usr/bin/env bash
# The test command: installs what is needed, builds, runs every test with ctest.
#   launch/test.sh            # all tests
#   launch/test.sh -R storage # extra arguments go to ctest
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash launch/deps.sh
build="${CTRPS_BUILD_DIR:-$root/build}"
jobs="${CTRPS_JOBS:-$(nproc)}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release ${CTRPS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
# OpenMPI refuses root without these; integration tests run real mpirun.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 900 "$@"
