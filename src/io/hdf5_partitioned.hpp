// src/io/hdf5_partitioned.hpp - what to_hdf5's partitioned output
// (hdf5_partitioned.cpp) and stage_out (stage_out.cpp) share: the root
// attributes of a partitioned virtual file that list its parts.
//
// A virtual file written by to_hdf5 with Hdf5WriteOptions::partitioned has,
// on its root group, `weft_part_files` (every part's file name, absolute on
// the node-local side, bare once staged out: HDF5 and stage_out look a bare
// name up beside the virtual file) and `weft_part_hosts` (the host that
// wrote each part), both 1-d arrays of UTF-8 strings (h5py reads them as str).
// Parts are listed even when they hold no block, so stage_out knows them all.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hdf5_library.hpp"

namespace weft::io::detail {

inline constexpr const char* kPartFilesAttribute = "weft_part_files";
inline constexpr const char* kPartHostsAttribute = "weft_part_hosts";

/// Writes `texts` as attribute `name` of `object`: a 1-d array of
/// variable-length UTF-8 strings. IoError "cannot-write" after `context`.
void write_text_list_attribute(hid_t object, const char* name, const std::vector<std::string>& texts,
                               const std::string& context);
/// Attribute `name` of `object` as written by write_text_list_attribute;
/// nothing when the object has no such attribute or it holds no strings.
std::optional<std::vector<std::string>> read_text_list_attribute(hid_t object, const char* name);

}  // namespace weft::io::detail
