# model_bench: training throughput of the CTR models against raw Eigen GEMMs.
add_executable(model_bench ${CMAKE_CURRENT_LIST_DIR}/model_bench.cc)
target_link_libraries(model_bench PRIVATE ctrps_worker_nn)
target_compile_options(model_bench PRIVATE -Wno-maybe-uninitialized)
