# bundle_latency: single-row and batch speed of exported bundles on real data (bench/compress_bench.sh).
add_executable(bundle_latency ${CMAKE_CURRENT_LIST_DIR}/bundle_latency.cc)
target_link_libraries(bundle_latency PRIVATE ctrps_worker_serve ctrps_worker_data ctrps_worker_train)
target_compile_options(bundle_latency PRIVATE -Wno-maybe-uninitialized)
