// Internal to src/config: reading the layers that refresh() gathers, config
// files and the WEFT_* environment, into checked values.
#pragma once

#include <string>
#include <vector>

#include "schema.hpp"
#include "weft/config.hpp"

namespace weft::config::detail {

/// One YAML file; throws ConfigError "bad-file" when it cannot be read or
/// parsed, "unknown-key" / "bad-value" naming the file.
Layer read_file(const Schema& schema, const std::string& path);

/// Every file that `paths` names, one layer each, lowest precedence first.
std::vector<Layer> read_files(const Schema& schema, const Paths& paths);

/// The WEFT_* variables of this process (but WEFT_CONFIG), in name order.
Layer read_environment(const Schema& schema);

}  // namespace weft::config::detail
