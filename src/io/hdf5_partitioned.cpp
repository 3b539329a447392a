// src/io/hdf5_partitioned.cpp - to_hdf5 with Hdf5WriteOptions::partitioned:
// one partitioned collective step in which every group of workers (the
// workers of a node, or one worker) writes the blocks it holds into a part
// file in its node-local folder, with the shared file's writer
// (hdf5_write.cpp) on the group's communicator, and the first worker writes
// the virtual file that maps every block to its part.
#include "hdf5_partitioned.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "../dist/options.hpp"
#include "blocks.hpp"
#include "hdf5_write.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"
#include "weft/tokenize.hpp"

namespace weft::io::detail {

namespace fs = std::filesystem;
using array::NDArray;

namespace {

Handle utf8_text_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

}  // namespace

void write_text_list_attribute(hid_t object, const char* name, const std::vector<std::string>& texts,
                               const std::string& context) {
  Handle type = utf8_text_type();
  const hsize_t dims[1] = {texts.size()};
  Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  std::vector<const char*> pointers;
  for (const std::string& text : texts) pointers.push_back(text.c_str());
  Handle attribute(check(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), "cannot-write",
                         context + ": cannot make attribute '" + name + "'"),
                   H5Aclose);
  check_status(H5Awrite(attribute.get(), type.get(), pointers.data()), "cannot-write",
               context + ": cannot write attribute '" + name + "'");
}

std::optional<std::vector<std::string>> read_text_list_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid()) return std::nullopt;
  Handle file_type(H5Aget_type(attribute.get()), H5Tclose);
  Handle space(H5Aget_space(attribute.get()), H5Sclose);
  if (H5Tget_class(file_type.get()) != H5T_STRING || H5Tis_variable_str(file_type.get()) <= 0 ||
      H5Sget_simple_extent_ndims(space.get()) != 1)
    return std::nullopt;
  Handle type = utf8_text_type();
  std::vector<char*> pointers(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get())), nullptr);
  if (H5Aread(attribute.get(), type.get(), pointers.data()) < 0) return std::nullopt;
  std::vector<std::string> texts;
  for (const char* text : pointers) texts.emplace_back(text ? text : "");
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
  return texts;
}

namespace {

// The groups of a partitioned write that write one part file each, as every
// rank of the step sees them: group G's members, its leader (its lowest
// rank, whose local directory holds the part) and this rank's communicator
// within its group.
class PartGroups {
 public:
  PartGroups(const CollectiveContext& ctx, bool per_node) {
    int leader = ctx.rank;
    if (per_node && ctx.comm != MPI_COMM_NULL) {
      MPI_Comm node = MPI_COMM_NULL;
      MPI_Comm_split_type(ctx.comm, MPI_COMM_TYPE_SHARED, ctx.rank, MPI_INFO_NULL, &node);
      MPI_Allreduce(&ctx.rank, &leader, 1, MPI_INT, MPI_MIN, node);
      int size = 1;
      MPI_Comm_size(node, &size);
      if (size > 1) {
        group_.comm = comm_ = node;
        MPI_Comm_rank(node, &group_.rank);
        group_.size = size;
      } else {
        MPI_Comm_free(&node);  // a node with one worker writes with the serial driver
      }
    }
    std::vector<int> leader_of(static_cast<std::size_t>(ctx.size), leader);
    if (ctx.comm != MPI_COMM_NULL) MPI_Allgather(&leader, 1, MPI_INT, leader_of.data(), 1, MPI_INT, ctx.comm);
    leaders_ = leader_of;
    std::sort(leaders_.begin(), leaders_.end());
    leaders_.erase(std::unique(leaders_.begin(), leaders_.end()), leaders_.end());
    for (const int l : leader_of) {
      const int g = static_cast<int>(std::lower_bound(leaders_.begin(), leaders_.end(), l) - leaders_.begin());
      rank_in_group_.push_back(static_cast<int>(std::count(group_of_.begin(), group_of_.end(), g)));
      group_of_.push_back(g);
    }
  }
  ~PartGroups() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  PartGroups(const PartGroups&) = delete;
  PartGroups& operator=(const PartGroups&) = delete;

  int count() const { return static_cast<int>(leaders_.size()); }
  int group_of(int rank) const { return group_of_[static_cast<std::size_t>(rank)]; }
  int leader(int group) const { return leaders_[static_cast<std::size_t>(group)]; }
  /// This rank's group, as the context its part file is written in.
  const CollectiveContext& group() const { return group_; }
  /// `mine` with every owner as its rank within `rank`'s group, and -1 for
  /// blocks other groups write (write_file's convention).
  LocalParts<NDArray> within_group(const LocalParts<NDArray>& mine, int rank) const {
    LocalParts<NDArray> out{mine.index, mine.values, {}};
    for (const int owner : mine.owner)
      out.owner.push_back(group_of(owner) == group_of(rank) ? rank_in_group_[static_cast<std::size_t>(owner)] : -1);
    return out;
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  CollectiveContext group_;
  std::vector<int> leaders_;        // per group: its lowest rank
  std::vector<int> group_of_;       // per rank
  std::vector<int> rank_in_group_;  // per rank
};

}  // namespace

// What the step needs besides the blocks.
struct PartitionedWrite {
  Hdf5WritePlan plan;
  bool per_node = false;
  bool overwrite = false;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(plan, per_node, overwrite);
  }
  void tokenize(Hasher& h) const { plan.tokenize(h); }
};

namespace {

std::string host_name() {
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// Every group's part file: <its leader's local directory>/<stem>.<id>.part<G>.h5,
// where <id> (8 hex digits of the hash of the target's absolute path) keeps
// apart the parts of targets with one stem in different folders, while a
// rewrite of the same target meets its own parts.
std::vector<std::string> part_files(const CollectiveContext& ctx, const PartGroups& groups, const std::string& target) {
  const std::vector<std::string> folders = allgather_text(ctx, fs::absolute(dist::local_directory()).string());
  const std::string prefix = fs::path(target).stem().string() + "." + tokenize(target).hex().substr(0, 8) + ".part";
  std::vector<std::string> parts;
  for (int g = 0; g < groups.count(); ++g)
    parts.push_back((fs::path(folders[static_cast<std::size_t>(groups.leader(g))]) / (prefix + std::to_string(g) + ".h5"))
                        .lexically_normal()
                        .string());
  return parts;
}

// The union of the non-empty blocks of `d` that group `g` writes, selected
// in the dataset's dataspace `space`: the same place in the part as in the
// virtual dataset.
Handle group_selection(hid_t space, const Hdf5DatasetPlan& d, const std::vector<int>& owner, const PartGroups& groups,
                       int g) {
  Handle selection(H5Scopy(space), H5Sclose);
  H5Sselect_none(selection.get());
  const ArrayBlocks blocks(d.chunks, d.first_part);
  for (std::size_t i = 0; i < blocks.count(); ++i) {
    const std::size_t part = d.first_part + i;
    const std::vector<std::int64_t> index = blocks.index(part);
    const array::Shape extent = blocks.extent(index);
    if (array::shape_size(extent) == 0 || groups.group_of(owner[part]) != g) continue;
    if (d.shape.empty()) {
      H5Sselect_all(selection.get());
      continue;
    }
    const array::Shape start = blocks.start(index);
    const std::vector<hsize_t> offset(start.begin(), start.end()), count(extent.begin(), extent.end());
    H5Sselect_hyperslab(selection.get(), H5S_SELECT_OR, offset.data(), nullptr, count.data(), nullptr);
  }
  return selection;
}

// Writes the virtual file: per dataset, one mapping per part holding blocks
// of it, and the list of parts and their hosts on the root group.
void write_virtual_file(const fs::path& temporary, const Hdf5WritePlan& plan, const std::vector<int>& owner,
                        const PartGroups& groups, const std::vector<std::string>& parts,
                        const std::vector<std::string>& hosts) {
  const std::string context = "to_hdf5: '" + plan.target + "'";
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_file_locking(fapl.get(), plan.file_locking, true);
  Handle file(check(H5Fcreate(temporary.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), "cannot-write",
                    context + ": cannot create '" + temporary.string() + "'"),
              H5Fclose);
  for (const Hdf5DatasetPlan& d : plan.datasets) {
    const std::string dataset_context = "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'";
    Handle space = memory_space(d.shape);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_layout(dcpl.get(), H5D_VIRTUAL);  // also for a dataset with no elements, hence no mapping
    for (int g = 0; g < groups.count(); ++g) {
      Handle selection = group_selection(space.get(), d, owner, groups, g);
      if (H5Sget_select_npoints(selection.get()) == 0) continue;
      const std::string& source = parts[static_cast<std::size_t>(g)];
      check_status(H5Pset_virtual(dcpl.get(), selection.get(), source.c_str(), d.name.c_str(), selection.get()),
                   "cannot-write", dataset_context + ": cannot map it to '" + source + "'");
    }
    create_dataset(file.get(), d, dcpl.get(), dataset_context);
  }
  Handle root(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
  write_text_list_attribute(root.get(), kPartFilesAttribute, parts, context);
  write_text_list_attribute(root.get(), kPartHostsAttribute, hosts, context);
  if (!file.close()) check_status(-1, "cannot-write", context + ": cannot finish '" + temporary.string() + "'");
}

}  // namespace

// The collective step: each group writes its part file; the first worker
// writes the virtual file; parts are renamed into place once every rank
// succeeded, then the virtual file.
void write_partitioned_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const PartitionedWrite& w) {
  Hdf5Lock lock;
  const PartGroups groups(ctx, w.per_node);
  const std::vector<std::string> parts = part_files(ctx, groups, w.plan.target);
  const int g = groups.group_of(ctx.rank);
  const bool leader = groups.group().rank == 0;
  StagedFile part(parts[static_cast<std::size_t>(g)], w.plan.token);
  if (!leader) part.release();  // the leader renames or removes it
  std::vector<std::string> hosts;
  const std::vector<std::string> rank_hosts = allgather_text(ctx, host_name());
  for (int group = 0; group < groups.count(); ++group)
    hosts.push_back(rank_hosts[static_cast<std::size_t>(groups.leader(group))]);
  std::optional<StagedFile> virtual_file;
  if (ctx.rank == 0) virtual_file.emplace(w.plan.target, w.plan.token);
  std::exception_ptr error;
  // A part of an earlier write is replaced only under overwrite; checked
  // before any rank creates a file, as the target is when the write is built.
  try {
    if (leader) check_output_target(part.target().string(), w.overwrite, "to_hdf5");
  } catch (...) {
    error = std::current_exception();
  }
  if (!all_ranks_ok(ctx, !error)) {
    if (error) std::rethrow_exception(error);
    return;
  }
  try {
    Hdf5WritePlan part_plan = w.plan;
    part_plan.target = part.target().string();
    write_file(groups.group(), groups.within_group(mine, ctx.rank), part_plan, part.temporary());
    if (virtual_file) write_virtual_file(virtual_file->temporary(), w.plan, mine.owner, groups, parts, hosts);
  } catch (...) {
    error = std::current_exception();
  }
  std::vector<StagedFile*> own;
  if (leader) own.push_back(&part);
  finish_staged_files(ctx, own, virtual_file ? &*virtual_file : nullptr, error, "HDF5 file");
}

void write_partitioned(const Hdf5WritePlan& plan, const std::vector<Delayed<NDArray>>& parts, Partition partition,
                       bool overwrite, const ComputeOptions& compute) {
  const PartitionedWrite write{plan, partition == Partition::node, overwrite};
  partitioned_collective(&write_partitioned_step, DelayedOptions{.name = "to-hdf5-partitioned", .pure = false})(
      parts, write)
      .compute(compute);
}

}  // namespace weft::io::detail
