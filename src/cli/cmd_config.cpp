// `nomq config show` (the settings a node would run with, keys masked) and `nomq config
// convert` (the original's obfuscated format to JSON and back).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_config.hpp"
#include "cli/command.hpp"
#include "nomq/config.hpp"

namespace nomq::cli {
namespace {

struct ConfigArgs {
  ConfigOptions show;  // -c FILE (and --wire/--epoch, as a node would apply them)
  bool reveal = false;
  std::string input;
  std::string output;
  std::string to;  // "json", "legacy"; empty: the other format
  bool force = false;
};

int usage(const std::string& cmd, const std::string& line) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq config %s --help' to see usage.\n", line.c_str(), cmd.c_str());
  return kExitUsage;
}

// "3f2a…(32 bytes)": enough to tell two files' keys apart, not enough to use them.
std::string masked(const std::string& hex) { return hex.substr(0, 4) + "…(32 bytes, masked)"; }

int run_show(const ConfigArgs& a) {
  auto loaded = load_config(a.show.path);
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    return kExitUsage;
  }
  if (!loaded->warning.empty()) std::fprintf(stderr, "%s\n", loaded->warning.c_str());
  if (!a.show.wire.empty()) set_wire(*loaded, a.show.wire == "v1" ? WireVersion::v1 : WireVersion::v2);
  if (!a.show.epoch.empty()) loaded->config.epoch = a.show.epoch == "2000" ? Epoch::e2000 : Epoch::e1970;
  auto j = nlohmann::ordered_json::parse(to_json_text(loaded->config));
  if (!a.reveal) {
    // Whichever key form the file has (raw keys or a master secret): the other form's keys are absent.
    for (const char* k : {"encryption_key", "hmac_key", "master_secret"}) {
      if (j.contains(k) && j[k].is_string()) j[k] = masked(j[k].get<std::string>());
    }
    if (j.contains("channel_keys") && j["channel_keys"].is_array()) {
      for (auto& e : j["channel_keys"]) {
        if (e.contains("secret") && e["secret"].is_string()) e["secret"] = masked(e["secret"].get<std::string>());
      }
    }
  }
  std::fprintf(stderr, "%s: %s format%s\n", a.show.path.c_str(),
               loaded->format == ConfigFormat::legacy ? "the original's (legacy)" : "JSON",
               loaded->format == ConfigFormat::legacy ? ", wire v1 implied; every other key at its default" : "");
  std::printf("%s\n", j.dump(2).c_str());
  return kExitOk;
}

// What a legacy file cannot hold: every key whose value differs from what loading a legacy
// file gives (its defaults, wire v1).
std::string lost_in_legacy(const NodeConfig& c) {
  auto text = to_legacy_text(c);
  if (!text) return {};
  auto legacy = parse_config(*text, "legacy");
  if (!legacy) return {};
  const auto want = nlohmann::ordered_json::parse(to_json_text(c));
  const auto got = nlohmann::ordered_json::parse(to_json_text(legacy->config));
  std::string lost;
  for (const auto& [k, v] : want.items())
    if (!got.contains(k) || got[k] != v) lost += (lost.empty() ? "" : ", ") + k + " " + v.dump();
  return lost;
}

int run_convert(const ConfigArgs& a) {
  auto loaded = load_config(a.input);
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    return kExitUsage;
  }
  if (!loaded->warning.empty()) std::fprintf(stderr, "%s\n", loaded->warning.c_str());
  ConfigFormat to = loaded->format == ConfigFormat::json ? ConfigFormat::legacy : ConfigFormat::json;
  if (a.to == "json") to = ConfigFormat::json;
  if (a.to == "legacy") to = ConfigFormat::legacy;
  if (to == ConfigFormat::legacy) {
    // Nothing dropped silently: the original's format holds ip, port, use_ipv6 and the keys.
    if (const std::string lost = lost_in_legacy(loaded->config); !lost.empty()) {
      if (!a.force)
        return usage("convert", "the original's format cannot hold " + lost +
                                    " (a node reading it uses the defaults and wire v1); --force "
                                    "converts anyway");
      std::fprintf(stderr, "WARNING: not stored in the original's format: %s\n", lost.c_str());
    }
  }
  const auto status = save_config(loaded->config, a.output, to, {.overwrite = a.force, .legacy_iv = std::nullopt});
  if (!status) {
    std::fprintf(stderr, "Error: %s\n", status.error().c_str());
    return kExitFailure;
  }
  std::printf("Wrote %s (%s format, wire %s, mode 0600) from %s (%s format)\n", a.output.c_str(),
              to == ConfigFormat::legacy ? "the original's" : "JSON",
              to == ConfigFormat::legacy || loaded->config.wire == WireVersion::v1 ? "v1" : "v2",
              a.input.c_str(), loaded->format == ConfigFormat::legacy ? "the original's" : "JSON");
  return kExitOk;
}

std::function<int()> setup_config(CLI::App& app) {
  auto a = std::make_shared<ConfigArgs>();
  auto which = std::make_shared<std::string>();
  app.require_subcommand(1);
  app.footer("Exit codes: 0 done, 1 the output cannot be written, 2 usage or config error.");
  CLI::App* show = app.add_subcommand("show", "Print the settings a node would run with (JSON, keys masked)");
  a->show.add_to(*show);
  show->add_flag("--reveal", a->reveal, "Print the keys as they are");
  show->callback([which] { *which = "show"; });
  CLI::App* convert = app.add_subcommand("convert", "Convert between the original's format and JSON");
  convert->add_option("-c,--config", a->input, "Config file to read")->required()->type_name("FILE");
  convert->add_option("-o,--output", a->output, "File to write (mode 0600)")->required()->type_name("FILE");
  convert->add_option("--to", a->to, "Output format [default: the other one]")
      ->check(CLI::IsMember({"json", "legacy"}))
      ->type_name("json|legacy");
  convert->add_flag("--force", a->force, "Overwrite the output; to legacy: drop what it cannot hold");
  convert->callback([which] { *which = "convert"; });
  return [a, which] { return *which == "show" ? run_show(*a) : run_convert(*a); };
}

}  // namespace

NOMQ_CLI_COMMAND("config", "Show a config (keys masked) or convert it (legacy <-> JSON)", setup_config);

}  // namespace nomq::cli
