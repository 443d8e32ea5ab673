// Options every node-running subcommand shares: the config file and the wire/epoch overrides.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "nomq/config.hpp"

namespace nomq::cli {

// -c/--config FILE, --wire v1|v2, --epoch 1970|2000 (the last two override the file).
struct ConfigOptions {
  std::string path;
  bool insecure_key_file = false;  // --insecure-key-file
  std::string wire;   // empty: from the config
  std::string epoch;  // empty: from the config

  void add_to(CLI::App& app, bool required = true);

  // Loads the file and applies the overrides. On failure prints `Error: <one line>` to stderr and
  // returns nullopt (the caller exits with kExitUsage); prints the loader's warning, if any.
  std::optional<NodeConfig> load() const;
};

// A CLI11 validator for `--wire` and `--epoch` values.
CLI::Validator wire_validator();
CLI::Validator epoch_validator();

}  // namespace nomq::cli
