// How `nomq` subcommands plug in: each src/cli/cmd_<name>.cpp registers itself with
// NOMQ_CLI_COMMAND, so adding a command never edits a shared file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "nomq/error.hpp"

namespace nomq::cli {

// An error for a one-line message: "<message> (<code name>)", or the name alone when the error
// carries no message. The name stays, so scripts can match it.
inline std::string error_text(const Error& e) {
  std::string text{e.message()};
  if (e.message() != e.name()) text += " (" + std::string{e.name()} + ")";
  return text;
}

// Exit codes shared by every subcommand (docs/cli.md).
enum Exit : int {
  kExitOk = 0,
  kExitFailure = 1,      // rejected input, undelivered QoS message, runtime failure
  kExitUsage = 2,        // bad command line or config
  kExitTimeout = 3,      // sub -W elapsed before -C messages
};

struct Command {
  std::string name;
  std::string description;
  // Adds the subcommand's options to `sub`; returns the function that runs it.
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& registry();

struct Registrar {
  explicit Registrar(Command c) { registry().push_back(std::move(c)); }
};

}  // namespace nomq::cli

#define NOMQ_CLI_CONCAT2(a, b) a##b
#define NOMQ_CLI_CONCAT(a, b) NOMQ_CLI_CONCAT2(a, b)
#define NOMQ_CLI_COMMAND(name, description, setup_fn) \
  static ::nomq::cli::Registrar NOMQ_CLI_CONCAT(nomq_cli_registrar_, __LINE__){ \
      ::nomq::cli::Command{name, description, setup_fn}}
