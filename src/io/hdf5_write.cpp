// src/io/hdf5_write.cpp - to_hdf5 (weft/io/hdf5.hpp): one partitioned
// collective step in which every worker writes the blocks it holds, through
// a temporary name renamed into place when every rank succeeded.
#include <algorithm>
#include <filesystem>
#include <utility>

#include "blocks.hpp"
#include "hdf5_write.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::NDArray;
using array::Shape;

bool filtered(const Hdf5WritePlan& plan) { return plan.gzip_level > 0 || plan.shuffle; }

void write_attribute(hid_t dataset, const std::string& name, const Hdf5Attribute& value, const std::string& context) {
  const auto create_and_write = [&](hid_t type, hid_t space, const void* data) {
    Handle attribute(check(H5Acreate2(dataset, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "cannot-write",
                           context + ": cannot make attribute '" + name + "'"),
                     H5Aclose);
    check_status(H5Awrite(attribute.get(), type, data), "cannot-write",
                 context + ": cannot write attribute '" + name + "'");
  };
  const auto list_space = [](std::size_t n) {
    const hsize_t dims[1] = {n};
    return Handle(H5Screate_simple(1, dims, nullptr), H5Sclose);
  };
  Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::int64_t>) {
          create_and_write(H5T_NATIVE_INT64, scalar.get(), &v);
        } else if constexpr (std::is_same_v<V, double>) {
          create_and_write(H5T_NATIVE_DOUBLE, scalar.get(), &v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          // Variable-length UTF-8, as h5py writes str attributes (read back as str).
          Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
          H5Tset_size(type.get(), H5T_VARIABLE);
          H5Tset_cset(type.get(), H5T_CSET_UTF8);
          const char* text = v.c_str();
          create_and_write(type.get(), scalar.get(), &text);
        } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>) {
          create_and_write(H5T_NATIVE_INT64, list_space(v.size()).get(), v.data());
        } else {
          create_and_write(H5T_NATIVE_DOUBLE, list_space(v.size()).get(), v.data());
        }
      },
      value);
}

Handle create_dataset(hid_t file, const Hdf5DatasetPlan& d, hid_t dcpl, const std::string& context) {
  Handle space = memory_space(d.shape);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle type = native_type(d.dtype);
  Handle dataset(check(H5Dcreate2(file, d.name.c_str(), type.get(), space.get(), lcpl.get(), dcpl, H5P_DEFAULT),
                       "cannot-write", context + ": cannot make it"),
                 H5Dclose);
  for (const auto& [name, value] : d.attributes) write_attribute(dataset.get(), name, value, context);
  return dataset;
}

// Creates a dataset of the plan in `file` (every rank, collectively),
// chunked like its array.
Handle create_chunked_dataset(hid_t file, const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d) {
  const std::string context = "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'";
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Chunks as the array's (dask's to_hdf5 takes each axis's first block);
  // 0-d and empty datasets cannot be chunked, so they stay unfiltered.
  if (!d.shape.empty() && array::shape_size(d.shape) > 0) {
    std::vector<hsize_t> chunk;
    for (const auto& axis : d.chunks) chunk.push_back(static_cast<hsize_t>(std::max<std::int64_t>(axis.front(), 1)));
    check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "cannot-write",
                 context + ": bad chunk shape");
    if (plan.shuffle) H5Pset_shuffle(dcpl.get());
    if (plan.gzip_level > 0) H5Pset_deflate(dcpl.get(), static_cast<unsigned>(plan.gzip_level));
    // Chunks are written whole by their blocks: filling them first is wasted I/O.
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  }
  // Late allocation: a part file of a partitioned write holds only its own chunks.
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_LATE);
  return create_dataset(file, d, dcpl.get(), context);
}

// One block this rank writes: where it goes and its elements.
struct BlockWrite {
  std::vector<std::int64_t> index;
  Shape start, extent;
  const NDArray* block = nullptr;
};

// This rank's non-empty blocks of dataset `d`, each checked against the
// dataset's chunks (ValueError "block-mismatch") before anything is written.
std::vector<BlockWrite> blocks_to_write(const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d, const ArrayBlocks& blocks,
                                        const LocalParts<NDArray>& mine) {
  std::vector<BlockWrite> out;
  for (std::size_t i = 0; i < mine.index.size(); ++i) {
    if (!blocks.holds(mine.index[i])) continue;
    std::vector<std::int64_t> index = blocks.index(mine.index[i]);
    const NDArray& given = *mine.values[i];
    const Shape extent = blocks.checked_extent(index, given, "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'");
    if (given.size() == 0) continue;
    Shape start = blocks.start(index);
    out.push_back({std::move(index), std::move(start), extent, &given});
  }
  return out;
}

// Writes this rank's blocks of dataset `d`. With a collective transfer every
// rank issues as many H5Dwrite calls as the rank with the most blocks of the
// dataset (the extra ones with empty selections), and the ranks agree after
// each call, so that a write that failed on one rank stops all of them
// instead of leaving the others in the next collective call. Independent
// writes agree once, after each rank's last block, so that a rank that failed
// does not close the file (collective in parallel HDF5) while the others
// still write. Returns false when another rank failed; this rank's own
// failure throws.
bool write_blocks(hid_t dataset, const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d, const ArrayBlocks& blocks,
                  const std::vector<BlockWrite>& writes, hid_t dxpl, const CollectiveContext& ctx,
                  const LocalParts<NDArray>& mine, const EarlyWriteback& writeback) {
  const std::string context = "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'";
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  Handle type = native_type(d.dtype);
  const std::size_t calls = plan.collective_transfer ? blocks.most_per_rank(mine.owner, ctx.size) : writes.size();
  std::exception_ptr error;
  bool all_ok = true;
  for (std::size_t call = 0; call < calls; ++call) {
    try {
      if (call < writes.size()) {
        const BlockWrite& w = writes[call];
        const NDArray block = w.block->astype(d.dtype);  // contiguous, of the dataset's dtype
        Handle selection = select_block(file_space.get(), w.start, w.extent);
        Handle memory = memory_space(w.extent);
        check_status(H5Dwrite(dataset, type.get(), memory.get(), selection.get(), dxpl, block.raw_data()),
                     "cannot-write", context + ": cannot write block " + array::shape_str(w.index));
        writeback.start();
      } else {
        Handle none(H5Scopy(file_space.get()), H5Sclose);
        H5Sselect_none(none.get());
        const double dummy = 0;  // HDF5 wants a buffer even for an empty selection
        check_status(H5Dwrite(dataset, type.get(), none.get(), none.get(), dxpl, &dummy), "cannot-write",
                     context + ": cannot take part in a collective write");
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (plan.collective_transfer) all_ok = all_ranks_ok(ctx, !error);
    if (error || !all_ok) break;
  }
  if (!plan.collective_transfer) all_ok = all_ranks_ok(ctx, !error);
  if (error) std::rethrow_exception(error);
  return all_ok;
}

void write_file(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const Hdf5WritePlan& plan,
                const fs::path& temporary) {
  const std::string context = "to_hdf5: '" + plan.target + "'";
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (ctx.comm != MPI_COMM_NULL) H5Pset_fapl_mpio(fapl.get(), ctx.comm, MPI_INFO_NULL);
  // Nobody else knows the temporary name, and flock fails or hangs on some
  // Lustre/NFS mounts: locking is off unless io.hdf5.file-locking asks.
  H5Pset_file_locking(fapl.get(), plan.file_locking, true);
  Handle file(check(H5Fcreate(temporary.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), "cannot-write",
                    context + ": cannot create '" + temporary.string() + "'"),
              H5Fclose);
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (ctx.comm != MPI_COMM_NULL)
    H5Pset_dxpl_mpio(dxpl.get(), plan.collective_transfer ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
  std::vector<Handle> datasets;
  for (const Hdf5DatasetPlan& d : plan.datasets) datasets.push_back(create_chunked_dataset(file.get(), plan, d));
  // Every rank checks its blocks before the first write and the ranks agree,
  // so a bad block on one rank stops all of them before a collective call.
  std::vector<ArrayBlocks> blocks;
  std::vector<std::vector<BlockWrite>> writes;
  std::exception_ptr error;
  try {
    for (const Hdf5DatasetPlan& d : plan.datasets) {
      blocks.emplace_back(d.chunks, d.first_part);
      writes.push_back(blocks_to_write(plan, d, blocks.back(), mine));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (!all_ranks_ok(ctx, !error)) {
    if (error) std::rethrow_exception(error);
    return;
  }
  // Unfiltered data has a known size: a disk too small for it fails here,
  // before HDF5's collective close could fail on one rank only.
  if (!filtered(plan)) {
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < blocks.size(); ++i)
      bytes += blocks[i].elements_written(mine.owner) * array::itemsize(plan.datasets[i].dtype);
    if (!reserve_space(ctx, temporary, bytes, "HDF5 file", plan.target)) return;
  }
  const EarlyWriteback writeback(temporary);
  for (std::size_t i = 0; i < datasets.size(); ++i)
    if (!write_blocks(datasets[i].get(), plan, plan.datasets[i], blocks[i], writes[i], dxpl.get(), ctx, mine, writeback))
      return;
  for (Handle& d : datasets)
    if (!d.close()) check_status(-1, "cannot-write", context + ": cannot close a dataset");
  if (!file.close()) check_status(-1, "cannot-write", context + ": cannot finish '" + temporary.string() + "'");
}

// The collective step: every worker writes its blocks into the temporary
// file; rank 0 renames it into place once all succeeded.
void write_hdf5_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const Hdf5WritePlan& plan) {
  Hdf5Lock lock;
  StagedFile stage(plan.target, plan.token);
  write_staged(ctx, stage, "HDF5 file", [&] { write_file(ctx, mine, plan, stage.temporary()); });
}

// io.hdf5.transfer: how unfiltered datasets are written on several ranks.
bool collective_transfer(bool filters) {
  const std::string choice = config::get<std::string>("io.hdf5.transfer");
  if (choice == "collective") return true;
  if (choice == "independent") return filters;  // HDF5 1.10 writes filtered data collectively only
  if (choice == "auto") return filters;
  throw ConfigError("bad-value", "bad value for 'io.hdf5.transfer': '" + choice +
                                     "' (use auto, collective or independent)");
}

}  // namespace detail

void to_hdf5(const std::string& path, const std::vector<Hdf5Dataset>& datasets, const Hdf5WriteOptions& options,
             const ComputeOptions& compute) {
  using namespace detail;
  if (options.gzip_level < 0 || options.gzip_level > 9)
    throw ValueError("bad-option", "to_hdf5: gzip_level " + std::to_string(options.gzip_level) +
                                       " is not 0 (off) to 9");
  Hdf5WritePlan plan;
  plan.target = check_output_target(path, options.overwrite, "to_hdf5").string();
  plan.token = staging_token();
  plan.gzip_level = options.gzip_level;
  plan.shuffle = options.shuffle;
  plan.file_locking = config::get<bool>("io.hdf5.file-locking");
  plan.collective_transfer = collective_transfer(filtered(plan));
  std::vector<Delayed<NDArray>> parts;
  for (const Hdf5Dataset& d : datasets) {
    check_dataset_name(d.name, "to_hdf5");
    const std::string name = absolute_name(d.name);
    for (const Hdf5DatasetPlan& seen : plan.datasets)
      if (seen.name == name)
        throw ValueError("duplicate-dataset", "to_hdf5: dataset '" + name + "' is given twice");
    if (array::has_unknown(d.array.chunks()))
      throw ValueError("unknown-chunks", "to_hdf5: dataset '" + name + "' has unknown chunk sizes " +
                                             array::chunks_str(d.array.chunks()) + "; call compute_chunk_sizes first");
    Hdf5Attributes attributes = d.attributes;
    attributes.insert(options.attributes.begin(), options.attributes.end());  // the dataset's own win
    plan.datasets.push_back({name, d.array.shape(), d.array.chunks(), d.array.dtype(), std::move(attributes),
                             parts.size()});
    for (Delayed<NDArray>& block : array::to_delayed(d.array)) parts.push_back(std::move(block));
  }
  if (plan.datasets.empty()) throw ValueError("bad-option", "to_hdf5: no datasets to write to '" + path + "'");
  if (options.partitioned != Partition::none)
    return write_partitioned(plan, parts, options.partitioned, options.overwrite, compute);
  partitioned_collective(&write_hdf5_step, DelayedOptions{.name = "to-hdf5", .pure = false})(parts, plan)
      .compute(compute);
}

void to_hdf5(const std::string& path, const std::string& dataset, const array::Array& x,
             const Hdf5WriteOptions& options, const ComputeOptions& compute) {
  to_hdf5(path, std::vector<Hdf5Dataset>{{dataset, x, {}}}, options, compute);
}

}  // namespace weft::io