// src/io/hdf5_mutex.hpp - the one lock around the process's HDF5 library.
//
// Debian's parallel HDF5 (libhdf5_openmpi) is built without thread safety,
// and NetCDF-C's MPI flavour (libnetcdf_mpi) calls the same library, so every
// HDF5 and nc_* call of the process happens under this mutex (defined in
// hdf5_library.cpp): threads of a rank take turns, ranks run in parallel.
#pragma once

#include <mutex>

namespace weft::io::detail {

std::mutex& hdf5_mutex();

}  // namespace weft::io::detail
