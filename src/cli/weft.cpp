// src/cli/weft.cpp - the `weft` command: version, help, `weft config` to
// inspect and check configuration, and `weft stage-out` to copy partitioned
// HDF5 output out of node-local scratch (man/weft.1 documents them).
//
// Errors print one line "weft: <message>" on stderr and exit with status 2.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "../io/stage_out.hpp"
#include "weft/config.hpp"
#include "weft/version.hpp"

namespace {

constexpr int usage_or_runtime_error = 2;

/// The merged value of `key` as YAML text ("null" for null).
std::string config_value(const std::string& key) {
  weft::config::source_of(key);  // throws ConfigError "unknown-key", also for a section
  YAML::Node node = YAML::Load(weft::config::dump_yaml());
  std::string path = weft::config::canonical_name(key);
  for (std::size_t begin = 0, dot = 0; dot != std::string::npos; begin = dot + 1) {
    dot = path.find('.', begin);
    node.reset(node[path.substr(begin, dot - begin)]);
  }
  return node.IsNull() ? "null" : node.Scalar();
}

void add_config_command(CLI::App& app) {
  CLI::App* config = app.add_subcommand("config", "Show and check weft's configuration");
  config->require_subcommand(1);

  config->add_subcommand("show", "Print the merged configuration as YAML")->callback([] {
    std::cout << weft::config::dump_yaml();
  });

  config->add_subcommand("defaults", "Print the built-in defaults, with a comment on every key")
      ->callback([] { std::cout << weft::config::defaults_yaml(); });

  CLI::App* get = config->add_subcommand("get", "Print the value of one key (e.g. scheduler)");
  CLI::Option* get_key = get->add_option("key", "Dotted key, e.g. optimization.fuse.active")->required();
  get->callback([get_key] { std::cout << config_value(get_key->as<std::string>()) << '\n'; });

  CLI::App* source = config->add_subcommand("source", "Print where the value of one key comes from");
  CLI::Option* source_key = source->add_option("key", "Dotted key")->required();
  source->callback(
      [source_key] { std::cout << weft::config::source_of(source_key->as<std::string>()) << '\n'; });

  CLI::App* validate = config->add_subcommand("validate", "Check YAML config files against the known keys");
  auto files = std::make_shared<std::vector<std::string>>();  // owned by the callback
  validate->add_option("file", *files, "YAML files")->required();
  validate->callback([files] {
    for (const std::string& file : *files) {
      weft::config::validate_file(file);
      std::cout << file << ": ok\n";
    }
  });
}

struct StageOutArguments {
  std::string virtual_file;
  std::string destination;
  bool overwrite = false;
};

// `weft stage-out VIRTUAL_FILE DEST [--overwrite]`; its exit status goes to `status`.
void add_stage_out_command(CLI::App& app, int& status) {
  CLI::App* stage = app.add_subcommand(
      "stage-out", "Copy the node-local parts of a partitioned HDF5 file into a shared folder "
                   "(run one task per node: srun --ntasks-per-node=1)");
  auto arguments = std::make_shared<StageOutArguments>();  // owned by the callback
  stage->add_option("virtual_file", arguments->virtual_file, "The virtual file to_hdf5 wrote")->required();
  stage->add_option("destination", arguments->destination, "The shared folder (made if missing)")->required();
  stage->add_flag("--overwrite", arguments->overwrite, "Replace files of the same names in the folder");
  stage->callback([arguments, &status] {
    status = weft::io::detail::stage_out_command(arguments->virtual_file, arguments->destination,
                                                 arguments->overwrite);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weft: Dask's model of parallel computing, native on MPI", "weft"};
  app.set_version_flag("--version", std::string("weft ") + weft::version);
  app.require_subcommand(1);
  add_config_command(app);
  int status = EXIT_SUCCESS;
  add_stage_out_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "weft: " << e.what() << '\n';
    return usage_or_runtime_error;
  } catch (const std::exception& e) {
    std::cerr << "weft: " << e.what() << '\n';
    return usage_or_runtime_error;
  }
  return status;
}
