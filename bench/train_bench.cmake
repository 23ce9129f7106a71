add_executable(train_bench ${CMAKE_CURRENT_LIST_DIR}/train_bench.cc)
target_link_libraries(train_bench PRIVATE ctrps_worker_train ctrps_storage)
