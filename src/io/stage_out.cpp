// src/io/stage_out.cpp - stage_out (weft/io/hdf5.hpp) and `weft stage-out`
// (stage_out.hpp): copies the part files of a partitioned virtual file into
// a shared folder and writes there a virtual file naming them by their bare
// file names, which HDF5 looks up beside the virtual file.
//
// One step on every rank: each rank says which parts it sees, the lowest
// rank that sees a part copies it (so the workers of one node never copy a
// part twice), a part nobody sees stops every rank alike with IoError
// "missing-part", and rank 0 writes the new virtual file from the image of
// the old one that the caller read (no other rank needs to see it). Copies
// and the virtual file go through temporary names (finish_staged_files).
#include "stage_out.hpp"

#include <mpi.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "../dist/options.hpp"
#include "hdf5_library.hpp"
#include "hdf5_partitioned.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io::detail {

namespace fs = std::filesystem;

/// A stage-out as every rank sees it.
struct StageOutPlan {
  std::string source;              // the virtual file, absolute
  std::string image;               // its bytes
  std::vector<std::string> parts;  // absolute paths of the parts, as listed
  std::vector<std::string> hosts;  // the host that wrote each
  std::string destination;         // the folder, absolute
  std::string token;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(source, image, parts, hosts, destination, token);
  }
  // The token is fresh for every stage-out: it names it.
  void tokenize(Hasher& h) const { tokenize_into(h, token); }
};

namespace {

// The virtual file held in memory (HDF5's core driver on a file image).
Handle open_image(const StageOutPlan& plan) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_core(fapl.get(), 64 * 1024, false);
  H5Pset_file_image(fapl.get(), const_cast<char*>(plan.image.data()), plan.image.size());  // copied
  // The core driver refuses to open an image under the name of a file that
  // exists; nothing exists below /dev/null.
  const std::string name = "/dev/null/" + fs::path(plan.source).filename().string();
  return {check(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.get()), "cannot-open",
                "stage_out: cannot open '" + plan.source + "'"),
          H5Fclose};
}

// Copies every attribute of `from` to `to` but the parts list.
void copy_attributes(hid_t from, hid_t to, const std::string& context) {
  H5O_info_t info;
  check_status(H5Oget_info2(from, &info, H5O_INFO_NUM_ATTRS), "cannot-read", context);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    Handle attribute(check(H5Aopen_by_idx(from, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
                           "cannot-read", context),
                     H5Aclose);
    const ssize_t length = H5Aget_name(attribute.get(), 0, nullptr);
    std::string name(static_cast<std::size_t>(std::max<ssize_t>(length, 0)), '\0');
    H5Aget_name(attribute.get(), name.size() + 1, name.data());
    if (name == kPartFilesAttribute) continue;
    Handle file_type(H5Aget_type(attribute.get()), H5Tclose);
    Handle memory_type(H5Tget_native_type(file_type.get(), H5T_DIR_DEFAULT), H5Tclose);
    Handle space(H5Aget_space(attribute.get()), H5Sclose);
    std::vector<unsigned char> buffer(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get())) *
                                      H5Tget_size(memory_type.get()));
    check_status(H5Aread(attribute.get(), memory_type.get(), buffer.data()), "cannot-read",
                 context + ": attribute '" + name + "'");
    Handle copy(check(H5Acreate2(to, name.c_str(), file_type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                      "cannot-write", context + ": cannot make attribute '" + name + "'"),
                H5Aclose);
    const herr_t written = H5Awrite(copy.get(), memory_type.get(), buffer.data());
    if (H5Tdetect_class(memory_type.get(), H5T_VLEN) > 0 || H5Tis_variable_str(memory_type.get()) > 0)
      H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, buffer.data());
    check_status(written, "cannot-write", context + ": cannot write attribute '" + name + "'");
  }
}

// A mapping's text (its source file or dataset name).
std::string mapping_text(ssize_t (*get)(hid_t, size_t, char*, size_t), hid_t dcpl, std::size_t i) {
  const ssize_t length = get(dcpl, i, nullptr, 0);
  std::string text(static_cast<std::size_t>(std::max<ssize_t>(length, 0)), '\0');
  get(dcpl, i, text.data(), text.size() + 1);
  return text;
}

// Recreates virtual dataset `name` of `from` in `to` with every source file
// named by its bare file name.
void copy_virtual_dataset(hid_t from, hid_t to, const std::string& name, const std::string& context) {
  const std::string dataset_context = context + ": dataset '" + name + "'";
  Handle source(check(H5Dopen2(from, name.c_str(), H5P_DEFAULT), "cannot-read", dataset_context), H5Dclose);
  Handle type(H5Dget_type(source.get()), H5Tclose);
  Handle space(H5Dget_space(source.get()), H5Sclose);
  Handle mappings(H5Dget_create_plist(source.get()), H5Pclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_layout(dcpl.get(), H5D_VIRTUAL);
  std::size_t count = 0;
  check_status(H5Pget_virtual_count(mappings.get(), &count), "not-partitioned",
               dataset_context + " is not a virtual dataset");
  for (std::size_t i = 0; i < count; ++i) {
    Handle virtual_space(H5Pget_virtual_vspace(mappings.get(), i), H5Sclose);
    Handle source_space(H5Pget_virtual_srcspace(mappings.get(), i), H5Sclose);
    const std::string file = fs::path(mapping_text(&H5Pget_virtual_filename, mappings.get(), i)).filename().string();
    const std::string dataset = mapping_text(&H5Pget_virtual_dsetname, mappings.get(), i);
    check_status(H5Pset_virtual(dcpl.get(), virtual_space.get(), file.c_str(), dataset.c_str(), source_space.get()),
                 "cannot-write", dataset_context + ": cannot map it to '" + file + "'");
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle target(check(H5Dcreate2(to, name.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                      "cannot-write", dataset_context + ": cannot make it"),
                H5Dclose);
  copy_attributes(source.get(), target.get(), dataset_context);
}

// Writes the staged virtual file at `temporary`: the source's datasets
// mapped to bare part names, its attributes, and the parts list renamed.
void write_staged_virtual_file(const StageOutPlan& plan, const fs::path& temporary) {
  const std::string context = "stage_out: '" + plan.source + "'";
  Handle from = open_image(plan);
  std::vector<std::pair<std::string, H5O_type_t>> objects;  // in visiting order: groups before their members
  check_status(H5Ovisit2(
                   from.get(), H5_INDEX_NAME, H5_ITER_INC,
                   [](hid_t, const char* name, const H5O_info_t* info, void* out) -> herr_t {
                     if (std::strcmp(name, ".") != 0)
                       static_cast<std::vector<std::pair<std::string, H5O_type_t>>*>(out)->emplace_back(name, info->type);
                     return 0;
                   },
                   &objects, H5O_INFO_BASIC),
               "cannot-read", context);
  Handle to(check(H5Fcreate(temporary.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), "cannot-write",
                  context + ": cannot create '" + temporary.string() + "'"),
            H5Fclose);
  for (const auto& [name, type] : objects) {
    if (type == H5O_TYPE_DATASET) {
      copy_virtual_dataset(from.get(), to.get(), "/" + name, context);
    } else if (type == H5O_TYPE_GROUP && H5Lexists(to.get(), name.c_str(), H5P_DEFAULT) <= 0) {
      Handle group(check(H5Gcreate2(to.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "cannot-write",
                         context + ": cannot make group '" + name + "'"),
                   H5Gclose);
      Handle source(H5Gopen2(from.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
      copy_attributes(source.get(), group.get(), context + ": group '" + name + "'");
    }
  }
  Handle source_root(H5Gopen2(from.get(), "/", H5P_DEFAULT), H5Gclose);
  Handle root(H5Gopen2(to.get(), "/", H5P_DEFAULT), H5Gclose);
  copy_attributes(source_root.get(), root.get(), context);
  std::vector<std::string> names;
  for (const std::string& part : plan.parts) names.push_back(fs::path(part).filename().string());
  write_text_list_attribute(root.get(), kPartFilesAttribute, names, context);
  if (!to.close()) check_status(-1, "cannot-write", context + ": cannot finish '" + temporary.string() + "'");
}

void copy_part(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::none, ec);
  if (ec)
    throw IoError("cannot-write",
                  "stage_out: cannot copy '" + from.string() + "' to '" + to.string() + "': " + ec.message());
}

// The plan of a stage-out, made where it is called: reads the virtual
// file and its parts list, checks (and makes) the destination folder and
// that no file of the same name is there unless overwrite.
StageOutPlan plan_stage_out(const std::string& virtual_file, const std::string& destination, bool overwrite) {
  StageOutPlan plan;
  const fs::path source = fs::absolute(virtual_file).lexically_normal();
  plan.source = source.string();
  std::ifstream in(source, std::ios::binary);
  if (!in) throw IoError("cannot-open", "stage_out: cannot open '" + virtual_file + "': " + std::strerror(errno));
  plan.image.assign(std::istreambuf_iterator<char>(in), {});
  {
    Hdf5Lock lock;
    Handle file = open_image(plan);
    Handle root(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
    auto parts = read_text_list_attribute(root.get(), kPartFilesAttribute);
    auto hosts = read_text_list_attribute(root.get(), kPartHostsAttribute);
    if (!parts || !hosts || parts->size() != hosts->size())
      throw IoError("not-partitioned", "stage_out: '" + virtual_file +
                                           "' is not the virtual file of a partitioned to_hdf5 (its root has no '" +
                                           kPartFilesAttribute + "' and '" + kPartHostsAttribute + "' lists)");
    // A bare name (a staged file) lies beside the virtual file, as HDF5 reads it.
    for (const std::string& part : *parts) plan.parts.push_back((source.parent_path() / part).lexically_normal().string());
    plan.hosts = std::move(*hosts);
  }
  const fs::path folder = check_output_folder(destination, true, "stage_out");
  if (::mkdir(folder.c_str(), 0777) != 0 && errno != EEXIST)
    weft::detail::throw_cannot_write("staged folder", folder, errno);
  plan.destination = folder.string();
  check_output_target((folder / source.filename()).string(), overwrite, "stage_out");
  for (const std::string& part : plan.parts)
    check_output_target((folder / fs::path(part).filename()).string(), overwrite, "stage_out");
  plan.token = staging_token();
  return plan;
}

}  // namespace

// The step, on every rank of ctx (see the top of the file).
void stage_out_step(const CollectiveContext& ctx, const StageOutPlan& plan) {
  std::string seen(plan.parts.size(), '0');
  for (std::size_t i = 0; i < plan.parts.size(); ++i) {
    std::error_code ec;
    if (fs::is_regular_file(plan.parts[i], ec)) seen[i] = '1';
  }
  const std::vector<std::string> seen_by = allgather_text(ctx, seen);
  std::vector<int> copier(plan.parts.size(), -1);
  std::string missing;
  for (std::size_t i = 0; i < plan.parts.size(); ++i) {
    for (int r = ctx.size - 1; r >= 0; --r)
      if (seen_by[static_cast<std::size_t>(r)][i] == '1') copier[i] = r;
    if (copier[i] < 0) missing += (missing.empty() ? "'" : ", '") + plan.parts[i] + "' (written on " + plan.hosts[i] + ")";
  }
  if (!missing.empty())
    throw IoError("missing-part", "stage_out: '" + plan.source + "': no rank sees part " + missing +
                                      ": run the stage-out on every node that wrote a part (srun "
                                      "--ntasks-per-node=1 weft stage-out) before the job ends");
  std::vector<std::unique_ptr<StagedFile>> copies;
  std::optional<StagedFile> virtual_file;
  std::exception_ptr error;
  try {
    for (std::size_t i = 0; i < plan.parts.size(); ++i) {
      if (copier[i] != ctx.rank) continue;
      copies.push_back(std::make_unique<StagedFile>(fs::path(plan.destination) / fs::path(plan.parts[i]).filename(),
                                                    plan.token));
      copy_part(plan.parts[i], copies.back()->temporary());
    }
    if (ctx.rank == 0) {
      virtual_file.emplace(fs::path(plan.destination) / fs::path(plan.source).filename(), plan.token);
      Hdf5Lock lock;
      write_staged_virtual_file(plan, virtual_file->temporary());
    }
  } catch (...) {
    error = std::current_exception();
  }
  std::vector<StagedFile*> own;
  for (const auto& copy : copies) own.push_back(copy.get());
  finish_staged_files(ctx, own, virtual_file ? &*virtual_file : nullptr, error, "staged HDF5 file");
}

int stage_out_command(const std::string& virtual_file, const std::string& destination, bool overwrite) {
  const bool mpi = dist::launched_by_mpi();
  CollectiveContext ctx;
  if (mpi) {
    MPI_Init(nullptr, nullptr);
    MPI_Comm_dup(MPI_COMM_WORLD, &ctx.comm);
    MPI_Comm_rank(ctx.comm, &ctx.rank);
    MPI_Comm_size(ctx.comm, &ctx.size);
  }
  std::exception_ptr error;
  std::string encoded;  // rank 0's plan; empty when it failed
  if (ctx.rank == 0) {
    try {
      std::ostringstream out;
      cereal::BinaryOutputArchive archive(out);
      archive(plan_stage_out(virtual_file, destination, overwrite));
      encoded = out.str();
    } catch (...) {
      error = std::current_exception();
    }
  }
  encoded = broadcast_text(ctx, std::move(encoded), 0);
  if (!encoded.empty()) {
    StageOutPlan plan;
    std::istringstream in(encoded);
    cereal::BinaryInputArchive archive(in);
    archive(plan);
    try {
      stage_out_step(ctx, plan);
    } catch (...) {
      error = std::current_exception();
    }
  }
  int status = error ? 2 : 0;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const IoError& e) {
      // Every rank throws a missing part alike: rank 0 speaks for them.
      if (ctx.rank == 0 || e.id() != "io.missing-part") std::cerr << "weft: " << e.what() << '\n';
    } catch (const std::exception& e) {
      std::cerr << "weft: " << e.what() << '\n';
    }
  }
  if (mpi) {
    MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MAX, ctx.comm);
    MPI_Comm_free(&ctx.comm);
    MPI_Finalize();
  }
  return status;
}

}  // namespace weft::io::detail

namespace weft::io {

void stage_out(const std::string& virtual_file, const std::string& destination, const StageOutOptions& options,
               const ComputeOptions& compute) {
  const detail::StageOutPlan plan = detail::plan_stage_out(virtual_file, destination, options.overwrite);
  collective(&detail::stage_out_step, DelayedOptions{.name = "stage-out", .pure = false})(plan).compute(compute);
}

}  // namespace weft::io
