// `nomq keygen`: a config with fresh random keys, in our JSON format or the original's.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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
  bool rotate = false;
  std::optional<int> port;
  std::string wire;
  std::string epoch;
  std::optional<std::string> group;
  std::string channel;       // --channel PATTERN
  std::string channel_from;  // --from FILE
};

int usage_error(const std::string& line) {
  std::fprintf(stderr, "Error: %s\nUse 'nomq keygen --help' to see usage.\n", line.c_str());
  return kExitUsage;
}

// `nomq keygen --rotate -o FILE`: the next key epoch of a master-secret config, in place. A new
// random master secret (what a rotation is for: whoever held the old one learns nothing of
// the new), key_epoch + 1, everything else (group_id, network, limits) as it was. The file is
// replaced atomically (written beside it, then renamed), so a node reloading it on SIGHUP reads
// either the old or the new text, never half of one. Running nodes keep the old epoch's keys in
// memory for the overlap: the file needs no previous secret (docs/security.md §4).
// Writes `config` next to `path` (path + suffix) and renames it over `path`, so that a running
// node reloading on SIGHUP never reads a half-written file. false: the error was printed.
bool replace_file(const NodeConfig& config, const std::string& path, const char* suffix) {
  const std::string tmp = path + suffix;
  std::remove(tmp.c_str());
  if (auto saved = save_config(config, tmp, ConfigFormat::json, {}); !saved) {
    std::fprintf(stderr, "Error: %s\n", saved.error().c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::perror(("Error: rename " + tmp + " -> " + path).c_str());
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

int run_rotate(const KeygenArgs& args) {
  if (args.output.empty() || args.output == "-") {
    return usage_error("--rotate needs -o FILE: the config to rotate (rewritten in place)");
  }
  if (args.legacy || args.raw || !args.wire.empty() || !args.epoch.empty() || args.group ||
      args.port) {
    return usage_error("--rotate takes only -o FILE (the rotated config keeps its other settings)");
  }
  auto loaded = load_config(args.output, LoadOptions{});
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    return kExitFailure;
  }
  NodeConfig config = std::move(loaded->config);
  if (loaded->format != ConfigFormat::json || config.key_form != KeyForm::master) {
    std::fprintf(stderr,
                 "Error: %s: cannot rotate raw keys (encryption_key/hmac_key have no key epochs; "
                 "write a master-secret config with 'nomq keygen' and deploy it instead)\n",
                 args.output.c_str());
    return kExitFailure;
  }
  if (config.wire == WireVersion::v1) {
    std::fprintf(stderr, "Error: %s: cannot rotate a wire v1 config (v1 has no key epochs)\n",
                 args.output.c_str());
    return kExitFailure;
  }
  if (config.key_epoch == 0xFFFFFFFFu) {
    std::fprintf(stderr, "Error: %s: key_epoch is already 4294967295, the last\n",
                 args.output.c_str());
    return kExitFailure;
  }
  auto fresh = generate_config(KeyForm::master);
  if (!fresh) {
    std::fprintf(stderr, "Error: %s\n", fresh.error().c_str());
    return kExitFailure;
  }
  config.master_secret = fresh->master_secret;
  config.key_epoch += 1;
  if (!replace_file(config, args.output, ".rotating")) return kExitFailure;
  std::printf("Rotated %s to key epoch %u (new master secret, group_id %s, mode 0600); send SIGHUP "
              "to the running nodes (within key_overlap_s / 2 = %u s of each other)\n",
              args.output.c_str(), static_cast<unsigned>(config.key_epoch), config.group_id.c_str(),
              static_cast<unsigned>(config.key_overlap_s / 2));
  return kExitOk;
}

// `nomq keygen --channel PATTERN -o FILE [--from OTHER]`: a per-channel key in the config FILE,
// in place (docs/config.md "channel_keys"): a fresh random secret, or the one OTHER holds for
// the same pattern (so that two nodes share it). A key of the same pattern is replaced (a new
// secret shuts out whoever held the old one). Written atomically, as --rotate; a running node
// takes it on SIGHUP.
int run_channel(const KeygenArgs& args) {
  if (args.output.empty() || args.output == "-") {
    return usage_error("--channel needs -o FILE: the config to add the channel key to (rewritten in place)");
  }
  if (args.legacy || args.raw || args.rotate || !args.wire.empty() || !args.epoch.empty() ||
      args.group || args.port) {
    return usage_error("--channel takes only -o FILE and --from FILE");
  }
  auto loaded = load_config(args.output, LoadOptions{});
  if (!loaded) {
    std::fprintf(stderr, "Error: %s\n", loaded.error().c_str());
    return kExitFailure;
  }
  NodeConfig config = std::move(loaded->config);
  if (loaded->format != ConfigFormat::json || config.wire != WireVersion::v2) {
    std::fprintf(stderr, "Error: %s: channel keys need a JSON config of wire v2\n",
                 args.output.c_str());
    return kExitFailure;
  }
  ChannelKeySpec spec;
  spec.pattern = args.channel;
  std::string source = "a new random secret";
  if (!args.channel_from.empty()) {
    auto other = load_config(args.channel_from, LoadOptions{});
    if (!other) {
      std::fprintf(stderr, "Error: %s\n", other.error().c_str());
      return kExitFailure;
    }
    bool found = false;
    for (const ChannelKeySpec& k : other->config.channel_keys) {
      if (k.pattern == args.channel) {
        spec = k;
        found = true;
      }
    }
    if (!found) {
      std::fprintf(stderr, "Error: %s has no channel key for '%s'\n", args.channel_from.c_str(),
                   args.channel.c_str());
      return kExitFailure;
    }
    if (other->config.group_id != config.group_id) {
      std::fprintf(stderr,
                   "Error: %s has group_id '%s', %s has '%s': the channel key derives other keys "
                   "in each (the group id is bound into them)\n",
                   args.channel_from.c_str(), other->config.group_id.c_str(), args.output.c_str(),
                   config.group_id.c_str());
      return kExitFailure;
    }
    source = "the secret of " + args.channel_from;
  } else {
    auto fresh = generate_config(KeyForm::master);
    if (!fresh) {
      std::fprintf(stderr, "Error: %s\n", fresh.error().c_str());
      return kExitFailure;
    }
    spec.secret = fresh->master_secret;
  }
  bool replaced = false;
  for (ChannelKeySpec& k : config.channel_keys) {
    if (k.pattern == spec.pattern) {
      k = spec;
      replaced = true;
    }
  }
  if (!replaced) config.channel_keys.push_back(spec);
  if (auto valid = validate_config(config); !valid) {
    std::fprintf(stderr, "Error: %s: %s\n", args.output.c_str(), valid.error().c_str());
    return kExitFailure;
  }
  if (auto reread = parse_config(to_json_text(config), args.output); !reread) {
    // The pattern's own checks (length, filter syntax) live in the reader.
    std::fprintf(stderr, "Error: --channel '%s': %s\n", args.channel.c_str(), reread.error().c_str());
    return kExitFailure;
  }
  if (!replace_file(config, args.output, ".channel")) return kExitFailure;
  std::printf("%s the channel key for '%s' in %s (%s, mode 0600); give it to the nodes that may "
              "use these channels (nomq keygen --channel '%s' --from %s -o THEIR_FILE), then "
              "SIGHUP the running ones\n",
              replaced ? "Replaced" : "Added", spec.pattern.c_str(), args.output.c_str(),
              source.c_str(), spec.pattern.c_str(), args.output.c_str());
  return kExitOk;
}

int run_keygen(const KeygenArgs& args) {
  if (args.rotate) return run_rotate(args);
  if (!args.channel.empty()) return run_channel(args);
  if (!args.channel_from.empty()) return usage_error("--from goes with --channel PATTERN");
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
  app.add_flag("--rotate", args->rotate,
               "Rotate the master-secret config -o FILE in place: key_epoch + 1, a new random "
               "master_secret, the rest unchanged (then SIGHUP the running nodes)");
  app.add_option("--channel", args->channel,
                 "Add a per-channel key for PATTERN (a channel or MQTT filter, e.g. 'door/#') to "
                 "the config -o FILE in place: a new random secret, or that of --from FILE")
      ->type_name("PATTERN");
  app.add_option("--from", args->channel_from,
                 "With --channel: copy that pattern's key from this config (nodes that share it "
                 "read, send and name the channels; others cannot)")
      ->type_name("FILE");
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
