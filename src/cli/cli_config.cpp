#include "cli/cli_config.hpp"

#include <cstdio>

namespace nomq::cli {

CLI::Validator wire_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return s == "v1" || s == "v2" ? std::string{} : "needs v1 or v2, got '" + s + "'";
      },
      "");
}

CLI::Validator epoch_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return s == "1970" || s == "2000" ? std::string{} : "needs 1970 or 2000, got '" + s + "'";
      },
      "");
}

void ConfigOptions::add_to(CLI::App& app, bool required) {
  auto* c = app.add_option("-c,--config", path, "Config file (JSON or the original's format)");
  c->type_name("FILE");
  if (required) c->required();
  app.add_flag("--insecure-key-file", insecure_key_file,
               "Accept a config file readable or writable by group or others (refused otherwise: "
               "it holds the keys)");
  app.add_option("--wire", wire, "Wire version (default: the config's)")
      ->type_name("v1|v2")
      ->check(wire_validator());
  app.add_option("--epoch", epoch, "Clock epoch of timestamps (default: the config's)")
      ->type_name("1970|2000")
      ->check(epoch_validator());
}

std::optional<NodeConfig> ConfigOptions::load() const {
  auto loaded = load_config(path, LoadOptions{.allow_insecure_permissions = insecure_key_file});
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    return std::nullopt;
  }
  if (!loaded->warning.empty()) std::fprintf(stderr, "%s\n", loaded->warning.c_str());
  if (!wire.empty()) set_wire(*loaded, wire == "v1" ? WireVersion::v1 : WireVersion::v2);
  if (!epoch.empty()) loaded->config.epoch = epoch == "2000" ? Epoch::e2000 : Epoch::e1970;
  return std::move(loaded->config);
}

}  // namespace nomq::cli
