#include "cli/pcap_reader.hpp"

#include <dlfcn.h>
#include <pcap/pcap.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

namespace nomq::cli {
namespace {

// libpcap is loaded when a capture is read, not linked: it brings nine more shared libraries
// (dbus, systemd, gcrypt, lzma...), and every `nomq pub` would pay for loading them at start-up
// (docs/cli.md; the first-publish benchmark counts process start-up).
struct Pcap {
  decltype(&pcap_open_offline_with_tstamp_precision) open = nullptr;
  decltype(&pcap_datalink) datalink = nullptr;
  decltype(&pcap_next_ex) next_ex = nullptr;
  decltype(&pcap_geterr) geterr = nullptr;
  decltype(&pcap_close) close = nullptr;
  std::string error;
};

const Pcap& pcap() {
  static const Pcap p = [] {
    Pcap r;
    void* h = nullptr;
    for (const char* name : {"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"}) {
      if ((h = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (h == nullptr) {
      const char* why = ::dlerror();
      r.error = std::string{"cannot load libpcap (Debian package libpcap0.8): "} + (why ? why : "");
      return r;
    }
    auto sym = [h](auto& fn, const char* name) {
      void* p = ::dlsym(h, name);
      static_assert(sizeof fn == sizeof p);
      std::memcpy(&fn, &p, sizeof fn);  // object to function pointer, as POSIX dlsym() intends
      return p != nullptr;
    };
    if (!sym(r.open, "pcap_open_offline_with_tstamp_precision") || !sym(r.datalink, "pcap_datalink") ||
        !sym(r.next_ex, "pcap_next_ex") || !sym(r.geterr, "pcap_geterr") || !sym(r.close, "pcap_close")) {
      r.error = "libpcap lacks a function nomq needs";
    }
    return r;
  }();
  return p;
}

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// The IP packet inside a link-layer frame: offset of the IP header and its version (4/6), or
// version 0 if it carries no IP.
struct IpStart {
  std::size_t offset = 0;
  int version = 0;
};

IpStart ip_start(int linktype, const std::uint8_t* d, std::size_t n) {
  auto by_ethertype = [](std::uint16_t type, std::size_t offset) -> IpStart {
    if (type == 0x0800) return {offset, 4};
    if (type == 0x86DD) return {offset, 6};
    return {};
  };
  switch (linktype) {
    case DLT_EN10MB: {
      std::size_t off = 12;
      if (n < off + 2) return {};
      std::uint16_t type = be16(d + off);
      while ((type == 0x8100 || type == 0x88A8) && n >= off + 6) {  // VLAN tags
        off += 4;
        type = be16(d + off);
      }
      return by_ethertype(type, off + 2);
    }
    case DLT_LINUX_SLL:  // 16-byte cooked header, protocol at 14
      return n < 16 ? IpStart{} : by_ethertype(be16(d + 14), 16);
    case DLT_LINUX_SLL2:  // 20-byte cooked header, protocol at 0
      return n < 20 ? IpStart{} : by_ethertype(be16(d), 20);
    case DLT_NULL:
    case DLT_LOOP: {  // 4-byte address family, host or network order
      if (n < 4) return {};
      std::uint32_t fam = 0;
      std::memcpy(&fam, d, 4);
      const std::uint32_t swapped = __builtin_bswap32(fam);
      auto is = [&](std::uint32_t v) { return fam == v || swapped == v; };
      if (is(2)) return {4, 4};
      if (is(10) || is(24) || is(28) || is(30)) return {4, 6};
      return {};
    }
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
#endif
#ifdef DLT_IPV6
    case DLT_IPV6:
#endif
      return n < 1 ? IpStart{} : IpStart{0, d[0] >> 4};
    default:
      return {};
  }
}

}  // namespace

std::string read_capture(const std::string& path, std::uint16_t port,
                         std::vector<CapturedDatagram>& out, std::size_t& skipped) {
  const Pcap& lib = pcap();
  if (!lib.error.empty()) return lib.error;
  char err[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(
      lib.open(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, err), lib.close);
  if (!pc) return err;
  const int linktype = lib.datalink(pc.get());
  skipped = 0;
  pcap_pkthdr* h = nullptr;
  const std::uint8_t* d = nullptr;
  std::size_t frame = 0;
  int rc = 0;
  while ((rc = lib.next_ex(pc.get(), &h, &d)) == 1) {
    ++frame;
    const std::size_t n = h->caplen;
    const IpStart ip = ip_start(linktype, d, n);
    if (ip.version == 0) continue;  // not IP (ARP ...)
    const std::uint8_t* p = d + ip.offset;
    const std::size_t left = n - ip.offset;
    Endpoint from, to;
    std::size_t udp = 0;
    if (ip.version == 4) {
      if (left < 20) continue;
      const std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0F) * 4;
      if (p[9] != 17 || ihl < 20 || left < ihl + 8) continue;
      if ((be16(p + 6) & 0x1FFF) != 0 || (be16(p + 6) & 0x2000) != 0) {  // a fragment
        ++skipped;
        continue;
      }
      from = Endpoint::v4(p[12], p[13], p[14], p[15], 0);
      to = Endpoint::v4(p[16], p[17], p[18], p[19], 0);
      udp = ihl;
    } else {
      if (left < 48) continue;
      if (p[6] != 17) {  // extension headers (or not UDP): not followed
        if (p[6] != 6 && p[6] != 58) ++skipped;
        continue;
      }
      from.family = to.family = Endpoint::Family::ipv6;
      std::memcpy(from.address.data(), p + 8, 16);
      std::memcpy(to.address.data(), p + 24, 16);
      udp = 40;
    }
    const std::uint8_t* u = p + udp;
    from.port = be16(u);
    to.port = be16(u + 2);
    const std::size_t udp_len = be16(u + 4);
    if (port != 0 && from.port != port && to.port != port) continue;
    if (udp_len < 8 || left < udp + udp_len) {  // truncated by the capture's snap length
      ++skipped;
      continue;
    }
    CapturedDatagram c;
    c.frame = frame;
    c.captured = WallTime{std::chrono::seconds(h->ts.tv_sec) + std::chrono::microseconds(h->ts.tv_usec)};
    c.from = from;
    c.to = to;
    c.payload.assign(u + 8, u + udp_len);
    out.push_back(std::move(c));
  }
  if (rc == -1) return path + ": " + lib.geterr(pc.get());
  return {};
}

}  // namespace nomq::cli
