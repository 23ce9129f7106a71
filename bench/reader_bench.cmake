# reader_bench: Criteo parsing throughput of the data pipeline against a raw
# read of the same bytes (plain and gzip).
add_executable(reader_bench ${CMAKE_CURRENT_LIST_DIR}/reader_bench.cc)
target_link_libraries(reader_bench PRIVATE ctrps_worker_data ZLIB::ZLIB)
