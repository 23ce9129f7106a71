add_executable(ckpt_bench ${CMAKE_CURRENT_LIST_DIR}/ckpt_bench.cc)
target_link_libraries(ckpt_bench PRIVATE ctrps_worker_train ctrps_storage)
