add_executable(storage_bench ${CMAKE_CURRENT_LIST_DIR}/storage_bench.cc
               ${CMAKE_CURRENT_LIST_DIR}/storage_bench_sections.cc
               ${CMAKE_CURRENT_LIST_DIR}/storage_bench_util.cc)
# RocksDB directly too: the bench measures raw MultiGet/WriteBatch beside the stores.
target_link_libraries(storage_bench PRIVATE ctrps_storage RocksDB::rocksdb Threads::Threads)
