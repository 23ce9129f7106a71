# ps_bench runs under `mpirun -np 2` (bench/ps_bench.sh starts it).
add_executable(ps_bench ${CMAKE_CURRENT_LIST_DIR}/ps_bench.cc)
target_link_libraries(ps_bench PRIVATE ctrps_worker_train ctrps_ps ctrps_storage MPI::MPI_CXX)
