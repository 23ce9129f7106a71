# gzip_resume_bench: a checkpoint resume deep inside a gzip input, from the
# file's start (before restart points) and from a restart point.
add_executable(gzip_resume_bench ${CMAKE_CURRENT_LIST_DIR}/gzip_resume_bench.cc)
target_link_libraries(gzip_resume_bench PRIVATE ctrps_worker_data ZLIB::ZLIB)
