// weft/main.hpp - starting the SPMD program.
//
//   int main(int argc, char** argv) {
//     return weft::main(argc, argv, [](weft::Client& client) { ...; return 0; });
//   }
//
// Every rank runs the same binary. Rank 0 runs the scheduler and `fn` (the
// client); every other rank serves as a worker until `fn` returns; all ranks
// then exit with fn's status. Without a launcher (or on one rank) `fn` runs
// with tasks on the local threads scheduler. weft's flags (--nthreads,
// --memory-limit, ... see weft(7)) are removed from argv first.
//
// Programs that keep their own main use the pieces:
//   weft::init(argc, argv);
//   if (weft::is_client()) status = my_client_code(weft::client());
//   else weft::serve();                 // returns when the client finishes
//   return weft::finalize(status);      // every rank
#pragma once

#include <functional>

#include "weft/client.hpp"

namespace weft {

/// Runs `fn` as described above and returns the status every rank exits with.
/// An exception escaping fn is printed once (by rank 0) and gives status 1.
int main(int& argc, char**& argv, const std::function<int(Client&)>& fn);

/// Starts the runtime on this rank (flags, MPI, the comm thread).
/// RuntimeError "already-started" if called twice.
void init(int& argc, char**& argv);
/// True on rank 0 (and without a launcher).
bool is_client();
/// Rank 0's client; RuntimeError "not-client" on a worker or before init().
Client& client();
/// Workers: serves tasks until the client finishes; returns its status.
int serve();
/// Every rank, last: rank 0 sends `status` to the workers; all ranks shut
/// MPI down. Returns the status (on workers: the client's).
int finalize(int status);

/// This process's rank and the number of ranks (0 and 1 without a launcher).
int rank() noexcept;
int nranks() noexcept;

}  // namespace weft
