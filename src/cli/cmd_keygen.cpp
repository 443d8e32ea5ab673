// `nomq keygen`: a config with fresh random keys, in our JSON format or the original's.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/cli_config.hpp"
#include "cli/command.hpp"
#include "nomq/config.hpp"

namespace nomq::cli {
namespace {

struct KeygenArgs {
  std::string output;
  bool legacy = false;
  bool force = false;
  bool raw = false;
  std::optional<int> port;
  std::string wire;
  std::string epoch;
  std::optional<std::string> group;
};

int usage_error(const std::string& line) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq keygen --help' to see usage.\n", line.c_str());
  return kExitUsage;
}

int run_keygen(const KeygenArgs& args) {
  // The original's format stores ip, port, use_ipv6 and the two keys, nothing else, and a node
  // reading it speaks wire v1: refuse what it could not hold rather than drop it silently.
  if (args.legacy) {
    const char* why = nullptr;
    if (args.wire == "v2") why = "--wire v2";
    if (!args.epoch.empty()) why = "--epoch";
    if (args.group) why = "--group";
    if (why != nullptr) {
      return usage_error(std::string{why} +
                         " cannot be stored with --legacy: the original's format holds only ip, "
                         "port, use_ipv6 and the keys, and implies wire v1 (pass --wire/--epoch "
                         "to nomq pub/sub instead, or write a JSON config)");
    }
  }

  // The original's devices (v1, the legacy format) know only the two raw keys.
  const bool raw = args.legacy || args.raw || args.wire == "v1";
  auto generated = generate_config(raw ? KeyForm::raw : KeyForm::master);
  if (!generated) {
    std::fprintf(stderr, "Error: %s\n", generated.error().c_str());
    return kExitFailure;
  }
  NodeConfig config = std::move(generated).value();
  if (args.port) config.port = static_cast<std::uint16_t>(*args.port);
  if (args.legacy || args.wire == "v1") {
    config.wire = WireVersion::v1;
    config.retransmit_initial_ms = wire_defaults(WireVersion::v1).retransmit_initial_ms;
    config.limits.max_pending = wire_defaults(WireVersion::v1).max_pending;
  }
  if (args.epoch == "2000") config.epoch = Epoch::e2000;
  if (args.group) {
    config.group = *args.group;
    // An IPv6 group makes an IPv6 node: bind to the IPv6 wildcard.
    if (config.group.find(':') != std::string::npos) {
      config.use_ipv6 = true;
      config.ip = "::";
    }
  }
  if (auto valid = validate_config(config); !valid) {
    // The fields a user can set here map one to one onto options.
    return usage_error("--" + std::string{valid.error().message()});
  }

  const ConfigFormat format = args.legacy ? ConfigFormat::legacy : ConfigFormat::json;
  if (args.output.empty() || args.output == "-") {
    std::string text;
    if (args.legacy) {
      auto legacy = to_legacy_text(config);
      if (!legacy) {
        std::fprintf(stderr, "Error: %s\n", legacy.error().c_str());
        return kExitFailure;
      }
      text = std::move(*legacy);
    } else {
      text = to_json_text(config);
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    // `nomq keygen > file` creates the file under the shell's umask, usually 0644.
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
      std::fprintf(stderr,
                   "WARNING: stdout is a file accessible by group or others (mode %04o); keys "
                   "should be private: use -o FILE, or chmod 600 it\n",
                   static_cast<unsigned>(st.st_mode & 07777));
    }
    return kExitOk;
  }
  const auto status = save_config(config, args.output, format,
                                  {.overwrite = args.force, .legacy_iv = std::nullopt});
  if (!status) {
    std::fprintf(stderr, "Error: %s\n", status.error().c_str());
    return kExitFailure;
  }
  std::printf("Wrote %s (%s format, %s keys, wire %s, port %u, mode 0600)\n", args.output.c_str(),
              args.legacy ? "the original's" : "JSON",
              config.key_form == KeyForm::master ? "master-secret" : "raw",
              config.wire == WireVersion::v1 ? "v1" : "v2", unsigned{config.port});
  return kExitOk;
}

std::function<int()> setup_keygen(CLI::App& app) {
  auto args = std::make_shared<KeygenArgs>();
  app.footer(
      "Share the file with every node that should talk to this one. Exit codes: 0 written, "
      "1 cannot write (exists without --force, permission), 2 usage error. See docs/config.md.");
  app.add_option("-o,--output", args->output, "Output file (default: stdout)")->type_name("FILE");
  app.add_flag("--force", args->force, "Overwrite an existing output file");
  app.add_flag("--legacy", args->legacy,
               "Write the original's obfuscated format (implies wire v1; holds only ip, port, "
               "use_ipv6 and the keys)");
  app.add_flag("--raw-keys", args->raw,
               "Write two raw keys (encryption_key, hmac_key) instead of a master_secret from "
               "which every key is derived (implied by --legacy and --wire v1: the original's devices "
               "need raw keys)");
  app.add_option("-p,--port", args->port, "Group port (default: 8888)")
      ->type_name("PORT")
      ->check(CLI::Range(0, 65535).description(""));
  app.add_option("--wire", args->wire, "Wire version (default: v2; v1 with --legacy)")
      ->type_name("v1|v2")
      ->check(wire_validator());
  app.add_option("--epoch", args->epoch, "Clock epoch of timestamps (default: 1970)")
      ->type_name("1970|2000")
      ->check(epoch_validator());
  app.add_option("--group", args->group,
                 "Group address: IPv4 broadcast or multicast, or IPv6 multicast "
                 "(default: 255.255.255.255)")
      ->type_name("ADDR");
  return [args] { return run_keygen(*args); };
}

}  // namespace

NOMQ_CLI_COMMAND("keygen", "Write a config with fresh random keys", setup_keygen);

}  // namespace nomq::cli
