// Config files on disk: read with format detection and a permission check, write with mode 0600.
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/config_internal.hpp"
#include "nomq/crypto_backend.hpp"

namespace nomq {
namespace {

constexpr std::size_t kMaxConfigFile = 1 << 20;  // a config is a few hundred bytes

std::string errno_text(int err) { return std::strerror(err); }

std::string mode_text(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777u);
  return buf;
}

// ssh's rule: a file holding secrets must not be accessible to group or others. Returns what
// is wrong ("readable by others (mode 0644)"), or nothing.
std::string permission_problem(unsigned mode) {
  if ((mode & 077u) == 0) return {};
  const char* who = (mode & 004u) != 0   ? "readable by others"
                    : (mode & 040u) != 0 ? "readable by group"
                                         : "accessible by group or others";
  return std::string{who} + " (mode " + mode_text(mode) + ")";
}

// `error` from a step that does not know the file, said about the file.
Error about(std::string_view file, const Error& error) {
  return Error{error.code(), file, ": ", error.message()};
}

Result<LoadedConfig> parse_impl(std::string_view text, std::string_view name) {
  // Editors on some systems prepend a UTF-8 byte order mark; it is not part of the JSON.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::size_t first = 0;
  while (first < text.size() && std::isspace(static_cast<unsigned char>(text[first])) != 0)
    ++first;
  if (first == text.size()) return Error{Errc::config_bad_format, name, ": empty file"};

  LoadedConfig r;
  std::string plain;
  if (text[first] == '{') {
    r.format = ConfigFormat::json;
    plain.assign(text);
  } else {
    r.format = ConfigFormat::legacy;
    r.config.wire = WireVersion::v1;  // the original speaks only v1
    auto unwrapped = detail::legacy_unwrap(text);
    if (!unwrapped) return about(name, unwrapped.error());
    plain = std::move(*unwrapped);
  }
  auto object = detail::parse_json_object(plain);
  if (!object) {
    return Error{object.error().code(), name, ": ",
                 r.format == ConfigFormat::legacy ? "decrypted config is " : "",
                 object.error().message()};
  }
  const auto unknown_keys = detail::read_fields(
      *object, r.format == ConfigFormat::json ? detail::KeySet::all : detail::KeySet::legacy,
      r.config);
  if (!unknown_keys) return about(name, unknown_keys.error());
  r.named_retransmit_initial =
      r.format == ConfigFormat::json && object->contains("retransmit_initial_ms");
  r.named_max_pending = r.format == ConfigFormat::json && object->contains("max_pending");
  set_wire(r, r.config.wire);
  if (!unknown_keys->empty()) {
    // The original ignores keys it does not know; so do we, but not silently.
    std::string keys;
    for (const auto& k : *unknown_keys) keys += (keys.empty() ? "" : ", ") + k;
    r.warning = "WARNING: " + std::string{name} +
                ": ignoring keys the original's format does not define: " + keys;
  }
  return r;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

WireDefaults wire_defaults(WireVersion wire) noexcept {
  return wire == WireVersion::v1 ? WireDefaults{1000, 5} : WireDefaults{200, 50};
}

void set_wire(LoadedConfig& loaded, WireVersion wire) noexcept {
  loaded.config.wire = wire;
  const WireDefaults d = wire_defaults(wire);
  if (!loaded.named_retransmit_initial) loaded.config.retransmit_initial_ms = d.retransmit_initial_ms;
  if (!loaded.named_max_pending) loaded.config.limits.max_pending = d.max_pending;
}

Result<LoadedConfig> parse_config(std::string_view text, std::string_view name) noexcept {
  try {
    return parse_impl(text, name);
  } catch (const std::exception& e) {
    return Error{Errc::config_bad_format, name, ": ", e.what()};
  } catch (...) {
    return Error{Errc::config_bad_format, name, ": cannot parse"};
  }
}

Result<LoadedConfig> load_config(const std::string& path) noexcept { return load_config(path, {}); }

Result<LoadedConfig> load_config(const std::string& path, const LoadOptions& options) noexcept {
  try {
    // O_NOFOLLOW: a key file is opened as itself, never through a symlink someone planted.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) {
      return Error{Errc::config_unreadable, path,
                   ": is a symbolic link; key files are opened without following links (name "
                   "the file itself)"};
    }
    if (fd < 0) return Error{Errc::config_unreadable, path, ": ", errno_text(errno)};
    struct stat st {};
    std::string text;
    int err = 0;
    if (::fstat(fd, &st) != 0) {
      err = errno;
    } else if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return Error{Errc::config_unreadable, path, ": not a regular file"};
    } else if (static_cast<std::size_t>(st.st_size) > kMaxConfigFile) {
      ::close(fd);
      return Error{Errc::config_bad_format, path, ": too large for a config (", st.st_size,
                   " bytes)"};
    } else {
      char buf[4096];
      for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) err = errno;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxConfigFile) break;
      }
    }
    ::close(fd);
    if (err != 0) return Error{Errc::config_unreadable, path, ": ", errno_text(err)};
    const std::string perm = permission_problem(static_cast<unsigned>(st.st_mode));
    if (!perm.empty() && !options.allow_insecure_permissions) {
      return Error{Errc::config_insecure, path, ": is ", perm,
                   "; it holds keys and must be private: chmod 600 ", path};
    }
    auto r = parse_impl(text, path);
    if (r) {
      std::vector<std::string> lines;
      if (!perm.empty()) {
        lines.push_back("WARNING: " + path + " is " + perm +
                        " (allowed by option); keys should be private: chmod 600 " + path);
      }
      if (!r->warning.empty()) lines.push_back(r->warning);
      r->warning.clear();
      for (const auto& l : lines) r->warning += (r->warning.empty() ? "" : "\n") + l;
    }
    return r;
  } catch (const std::exception& e) {
    return Error{Errc::config_unreadable, path, ": ", e.what()};
  }
}

Result<std::string> to_legacy_text(const NodeConfig& config, const std::optional<Iv>& iv) noexcept {
  try {
    if (config.key_form != KeyForm::raw) {
      return Error{Errc::config_bad_field,
                   "master_secret: the original's format holds only encryption_key and hmac_key "
                   "(write raw keys for v1 devices: nomq keygen --legacy)"};
    }
    Iv use{};
    if (iv) {
      use = *iv;
    } else if (RAND_bytes(use.data(), static_cast<int>(use.size())) != 1) {
      return Error{Errc::crypto_failure, "cannot draw an IV: RAND_bytes failed"};
    }
    return detail::legacy_wrap(to_legacy_json_text(config), use);
  } catch (const std::exception& e) {
    return Error{Errc::crypto_failure, e.what()};
  }
}

Result<void> save_config(const NodeConfig& config, const std::string& path, ConfigFormat format,
                         const SaveOptions& options) noexcept {
  try {
    if (auto valid = validate_config(config); !valid) return about(path, valid.error());
    std::string text;
    if (format == ConfigFormat::json) {
      text = to_json_text(config);
    } else {
      auto legacy = to_legacy_text(config, options.legacy_iv);
      if (!legacy) return about(path, legacy.error());
      text = std::move(*legacy);
    }
    // The mode goes to open() itself: the keys are never readable by others, not even briefly.
    // O_NOFOLLOW: --force never truncates the target of a symlink planted at `path` (O_EXCL
    // already refuses one without --force).
    const int flags =
        O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (options.overwrite ? O_TRUNC : O_EXCL);
    const int fd = ::open(path.c_str(), flags, 0600);
    if (fd < 0) {
      if (errno == EEXIST) {
        return Error{Errc::io_error, path, ": already exists (use --force to overwrite)"};
      }
      if (errno == ELOOP) {
        return Error{Errc::io_error, path,
                     ": is a symbolic link; refusing to write keys through it"};
      }
      return Error{Errc::io_error, path, ": ", errno_text(errno)};
    }
    int err = 0;
    // An existing file keeps its old mode under O_TRUNC: tighten it before writing any key.
    if (::fchmod(fd, 0600) != 0 || !write_all(fd, text) || ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    if (err != 0) return Error{Errc::io_error, path, ": ", errno_text(err)};
    return {};
  } catch (const std::exception& e) {
    return Error{Errc::io_error, path, ": ", e.what()};
  }
}

Result<void> wire_keys_of(const NodeConfig& c, WireKeys& out) noexcept {
  const bool ok =
      c.key_form == KeyForm::master
          ? derive_wire_keys(backend_hkdf(), c.master_secret,
                             KeyContext{.group_id = c.group_id, .key_epoch = c.key_epoch,
                                        .wire = c.wire},
                             out)
          : raw_wire_keys(backend_hkdf(), c.encryption_key, c.hmac_key, c.wire, out);
  if (!ok) return Error{Errc::crypto_failure, "cannot derive the keys (HKDF-SHA256 failed)"};
  return {};
}

Result<NodeConfig> generate_config(KeyForm form) noexcept {
  try {
    NodeConfig c;
    c.key_form = form;
    bool ok = true;
    if (form == KeyForm::master) {
      // A random group id: nodes that share the file share it; two groups never collide.
      std::array<std::uint8_t, 8> id{};
      ok = RAND_bytes(c.master_secret.data(), static_cast<int>(c.master_secret.size())) == 1 &&
           RAND_bytes(id.data(), static_cast<int>(id.size())) == 1;
      c.group_id = detail::hex_encode(id);
    } else {
      ok = RAND_bytes(c.encryption_key.data(), static_cast<int>(c.encryption_key.size())) == 1 &&
           RAND_bytes(c.hmac_key.data(), static_cast<int>(c.hmac_key.size())) == 1;
    }
    if (!ok) return Error{Errc::crypto_failure, "cannot draw random keys: RAND_bytes failed"};
    return c;
  } catch (...) {
    return Error{Errc::crypto_failure, "cannot draw random keys: out of memory"};
  }
}

}  // namespace nomq
