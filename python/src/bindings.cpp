// nomq._nomq: the C++ runtime (nomq::Node, config files) for Python, with pybind11.
//
// This module is the thin layer; the API people use (the original's NoMQ class on asyncio, the
// synchronous one) is Python, in python/nomq/. Rules kept here:
//  - every nomq::Error becomes a Python exception from nomq._errors carrying the library's code
//    name, domain and message (raise_error);
//  - the GIL is released around every call that can wait or take the node's lock (run_once,
//    Listener::next, PublishHandle::wait_for, publish, close), so other Python threads run
//    while C++ waits;
//  - nothing here keeps a Python object across the release: arguments are converted first.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "nomq/config.hpp"
#include "nomq/endpoint_io.hpp"
#include "nomq/node.hpp"

namespace py = pybind11;

namespace {

// Raises the Python exception for `e`: nomq._errors.error_for(name, domain, message, value)
// builds an instance of the right class (NoMQError or a subclass).
[[noreturn]] void raise_error(const nomq::Error& e) {
  py::object errors = py::module_::import("nomq._errors");
  py::object exc = errors.attr("error_for")(std::string{e.name()}, std::string{nomq::to_string(e.domain())},
                                            std::string{e.message()}, static_cast<int>(e.code()));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

[[noreturn]] void raise_error(nomq::Errc code, const std::string& message) {
  raise_error(nomq::Error{code, message});
}

template <class T>
T unwrap(nomq::Result<T>&& r) {
  if (!r) raise_error(r.error());
  return std::move(r).value();
}

void unwrap(nomq::Result<void>&& r) {
  if (!r) raise_error(r.error());
}

// Seconds (float) to the library's duration; negative and NaN are zero.
nomq::Duration seconds(double s) {
  if (!(s > 0)) return nomq::Duration::zero();
  if (s > 1e9) s = 1e9;
  return std::chrono::duration_cast<nomq::Duration>(std::chrono::duration<double>(s));
}

py::tuple endpoint_tuple(const nomq::Endpoint& e) {
  if (!e.valid()) return py::make_tuple(py::none(), 0);
  std::string text = nomq::to_string(e);  // "1.2.3.4:5" or "[::1]:5"
  const auto colon = text.rfind(':');
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return py::make_tuple(host, e.port);
}

// Bytes of a str (UTF-8) or a bytes-like object, copied (the GIL may be released afterwards).
std::string bytes_like(const py::handle& h, const char* what) {
  if (py::isinstance<py::str>(h)) return h.cast<std::string>();
  PyObject* b = PyBytes_FromObject(h.ptr());
  if (b == nullptr) {
    PyErr_Clear();
    throw py::type_error(std::string{what} + " must be str or bytes-like, not " +
                         std::string{py::str(h.get_type().attr("__name__"))});
  }
  py::bytes owned = py::reinterpret_steal<py::bytes>(b);
  return owned.cast<std::string>();
}

// The message as the original gave it: str when the bytes are UTF-8 (always, on wire v1),
// otherwise the bytes themselves.
py::object message_object(const std::string& m) {
  PyObject* s = PyUnicode_DecodeUTF8(m.data(), static_cast<Py_ssize_t>(m.size()), "strict");
  if (s != nullptr) return py::reinterpret_steal<py::object>(s);
  PyErr_Clear();
  return py::bytes(m);
}

py::dict delivery_dict(const nomq::Delivery& d) {
  py::list recipients;
  for (const auto& r : d.recipients) {
    py::dict rd;
    rd["address"] = endpoint_tuple(r.endpoint);
    rd["session_id"] = r.session_id;
    rd["state"] = std::string{nomq::to_string(r.state)};
    rd["transmissions"] = r.transmissions;
    recipients.append(rd);
  }
  py::dict out;
  out["message_id"] = d.message_id;
  out["channel"] = d.channel;
  out["qos"] = static_cast<int>(d.qos);
  out["reason"] = std::string{nomq::to_string(d.reason)};
  out["recipients"] = recipients;
  return out;
}

nomq::Qos qos_of(int qos) {
  if (qos < 0 || qos > 2) {
    raise_error(nomq::Errc::invalid_argument, "qos must be 0, 1 or 2, got " + std::to_string(qos));
  }
  return static_cast<nomq::Qos>(qos);
}

// A node and the things Python needs next to it.
class PyNode {
 public:
  explicit PyNode(std::unique_ptr<nomq::Node> node) : node_(std::move(node)) {}

  nomq::Node& get() {
    if (!node_) raise_error(nomq::Errc::closed, "the node is closed");
    return *node_;
  }
  std::unique_ptr<nomq::Node> node_;
};

// Drains up to `max` messages of a listener without waiting, in one call: the asyncio driver
// calls this once per loop turn.
py::list drain(nomq::Listener& listener, std::size_t max) {
  py::list out;
  for (std::size_t i = 0; i < max; ++i) {
    std::optional<nomq::Message> m = listener.next(nomq::Duration::zero());
    if (!m) break;
    out.append(py::cast(std::move(*m)));
  }
  return out;
}

nomq::NodeConfig config_from_dict(const py::dict& config, nomq::ConfigFormat& format) {
  // The original's five keys make a legacy file (readable by MicroPython devices); any of
  // ours makes a JSON one. The dict goes through the library's own parser, so a bad value is
  // reported exactly as in a file ("<output>: port: must be an integer in 0..65535, got 70000").
  static const char* const original[] = {"ip", "port", "use_ipv6", "encryption_key", "hmac_key"};
  format = nomq::ConfigFormat::legacy;
  for (const auto& item : config) {
    const std::string key = py::str(item.first);
    bool is_original = false;
    for (const char* k : original) is_original = is_original || key == k;
    if (!is_original) format = nomq::ConfigFormat::json;
  }
  const std::string text = py::module_::import("json").attr("dumps")(config).cast<std::string>();
  auto loaded = nomq::parse_config(text, "config");
  if (!loaded) raise_error(loaded.error());
  return loaded->config;
}

}  // namespace

PYBIND11_MODULE(_nomq, m) {
  m.doc() = "The NoMQ C++ runtime (nomq::Node). Use the `nomq` package, not this module.";

  py::class_<nomq::Message>(m, "Message", "A received message (owned copy).")
      .def_property_readonly("channel", [](const nomq::Message& x) { return x.channel; })
      .def_property_readonly("message", [](const nomq::Message& x) { return message_object(x.message); },
                             "str when the bytes are UTF-8 (always on wire v1), else bytes")
      .def_property_readonly("payload", [](const nomq::Message& x) { return py::bytes(x.message); })
      .def_property_readonly("qos", [](const nomq::Message& x) { return static_cast<int>(x.qos); })
      .def_readonly("retain", &nomq::Message::retain)
      .def_readonly("priority", &nomq::Message::priority)
      .def_property_readonly("sender", [](const nomq::Message& x) { return endpoint_tuple(x.from); })
      .def_readonly("sender_session", &nomq::Message::sender_session)
      .def_readonly("message_id", &nomq::Message::message_id)
      .def_readonly("ack_token", &nomq::Message::ack_token,
                    "With deferred_ack, a QoS 1/2 message's token for Node.accept/refuse; else 0")
      .def("mssg", [](const nomq::Message& x) {
        py::dict d;
        d["channel"] = x.channel;
        d["message"] = message_object(x.message);
        return d;
      }, "The original's form: {'channel': ..., 'message': ...}.")
      .def("__repr__", [](const nomq::Message& x) {
        return "Message(channel=" + std::string{py::repr(py::str(x.channel))} +
               ", message=" + std::string{py::repr(message_object(x.message))} +
               ", qos=" + std::to_string(static_cast<int>(x.qos)) + ")";
      });

  py::class_<nomq::Listener>(m, "Listener")
      .def("next", [](nomq::Listener& l, double timeout) {
        std::optional<nomq::Message> msg;
        {
          py::gil_scoped_release release;
          msg = l.next(seconds(timeout));
        }
        if (!msg) return py::object(py::none());
        return py::cast(std::move(*msg));
      }, py::arg("timeout") = 0.0, "The next message, waiting up to `timeout` s; None if none.")
      .def("drain", &drain, py::arg("max") = 4096, "Up to `max` messages, without waiting.")
      .def("__len__", &nomq::Listener::size);

  py::class_<nomq::PublishHandle>(m, "PublishHandle")
      .def_property_readonly("message_id", &nomq::PublishHandle::message_id)
      .def("ready", &nomq::PublishHandle::ready)
      .def("wait_for", [](const nomq::PublishHandle& h, double timeout) {
        std::optional<nomq::Delivery> d;
        {
          py::gil_scoped_release release;
          d = h.wait_for(seconds(timeout));
        }
        if (!d) return py::object(py::none());
        return py::object(delivery_dict(*d));
      }, py::arg("timeout") = 0.0,
      "The delivery report as a dict, waiting up to `timeout` s; None if not ready.");

  py::class_<PyNode>(m, "Node")
      .def_static("load", [](const std::string& path, bool deferred_ack,
                             std::optional<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>> resume) {
        // Node::load, with the two engine options a config file does not carry (they are for
        // programs that keep messages and sessions durable themselves, docs/python.md):
        // deferred acknowledgement and a session to continue.
        auto loaded = nomq::load_config(path);
        if (!loaded) raise_error(loaded.error());
        if (!loaded->warning.empty()) {
          py::module_::import("logging").attr("getLogger")("nomq").attr("warning")(loaded->warning);
        }
        nomq::set_log_level(loaded->config.log_level);
        auto options = nomq::to_node_options(loaded->config);
        if (!options) {
          raise_error(nomq::Error{options.error().code(), path, ": ", options.error().message()});
        }
        options->engine.deferred_ack = deferred_ack;
        if (resume) {
          options->engine.resume.session_id = std::get<0>(*resume);
          options->engine.resume.next_sequence = std::get<1>(*resume);
          options->engine.resume.next_message_id = std::get<2>(*resume);
        }
        std::optional<nomq::Result<std::unique_ptr<nomq::Node>>> r;
        {
          py::gil_scoped_release release;
          r.emplace(nomq::Node::create(*options));
        }
        return std::make_unique<PyNode>(unwrap(std::move(*r)));
      }, py::arg("config_file"), py::arg("deferred_ack") = false, py::arg("resume") = py::none())
      .def("accept", [](PyNode& n, std::uint32_t token) {
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.accept(token);
        }
        unwrap(std::move(r));
      }, py::arg("ack_token"))
      .def("refuse", [](PyNode& n, std::uint32_t token) {
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.refuse(token);
        }
        unwrap(std::move(r));
      }, py::arg("ack_token"))
      .def("session_state", [](PyNode& n) {
        const nomq::SessionResume s = n.get().session_state();
        return py::make_tuple(s.session_id, s.next_sequence, s.next_message_id);
      }, "(session_id, next_sequence, next_message_id) to continue after a restart; v1: zeros")
      .def("subscribe", [](PyNode& n, const std::string& channel, int priority) {
        if (priority < 0 || priority > 15) {
          raise_error(nomq::Errc::invalid_argument,
                      "priority must be 0..15, got " + std::to_string(priority));
        }
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.subscribe(channel, static_cast<std::uint8_t>(priority));
        }
        unwrap(std::move(r));
      }, py::arg("channel"), py::arg("priority") = 0)
      .def("unsubscribe", [](PyNode& n, const std::string& channel) {
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.unsubscribe(channel);
        }
        unwrap(std::move(r));
      }, py::arg("channel"))
      .def("withdraw", [](PyNode& n, const std::string& channel) {
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.withdraw(channel);
        }
        unwrap(std::move(r));
      }, py::arg("channel"))
      .def("publish", [](PyNode& n, const std::string& channel, const py::handle& message, int qos,
                         bool retain, std::optional<int> ttl, int priority,
                         std::optional<std::string> ip, std::optional<int> port,
                         std::optional<double> wait_for_subscribers, std::uint32_t message_id) {
        nomq::PublishOptions o;
        o.message_id = message_id;
        o.qos = qos_of(qos);
        o.retain = retain;
        if (ttl) {
          if (*ttl < 1 || *ttl > 65535) {
            raise_error(nomq::Errc::invalid_argument,
                        "ttl must be 1..65535 seconds, got " + std::to_string(*ttl));
          }
          o.ttl_s = static_cast<std::uint16_t>(*ttl);
        }
        if (priority < 0 || priority > 15) {
          raise_error(nomq::Errc::invalid_argument,
                      "priority must be 0..15, got " + std::to_string(priority));
        }
        o.priority = static_cast<std::uint8_t>(priority);
        if (ip) {
          const int p = port.value_or(0);
          if (p < 1 || p > 65535) {
            raise_error(nomq::Errc::invalid_argument,
                        "port must be 1..65535, got " + std::to_string(p));
          }
          auto dest = nomq::parse_endpoint(*ip, static_cast<std::uint16_t>(p));
          if (!dest) {
            raise_error(nomq::Errc::invalid_argument,
                        "ip '" + *ip + "' is not a numeric IPv4 or IPv6 address");
          }
          o.destination = *dest;
        }
        if (wait_for_subscribers) o.wait_for_subscribers = seconds(*wait_for_subscribers);
        const std::string payload = bytes_like(message, "message");
        nomq::Node& node = n.get();
        std::optional<nomq::Result<nomq::PublishHandle>> r;
        {
          py::gil_scoped_release release;
          r.emplace(node.publish(channel, payload, o));
        }
        return unwrap(std::move(*r));
      }, py::arg("channel"), py::arg("message"), py::arg("qos") = 0, py::arg("retain") = false,
      py::arg("ttl") = py::none(), py::arg("priority") = 0, py::arg("ip") = py::none(),
      py::arg("port") = py::none(), py::arg("wait_for_subscribers") = py::none(),
      py::arg("message_id") = 0)
      .def("listen", [](PyNode& n) { return n.get().listen(); })
      .def("gen_signature", [](PyNode& n, const py::handle& message) {
        const std::string text = bytes_like(message, "message");
        const nomq::Digest d = n.get().gen_signature(text);
        return py::bytes(reinterpret_cast<const char*>(d.data()), d.size());
      }, py::arg("message"))
      .def("authenticate", [](PyNode& n, const py::handle& signature, const py::handle& message) {
        const std::string s = bytes_like(signature, "signature");
        const std::string text = bytes_like(message, "message");
        return n.get().authenticate(nomq::as_bytes(s), text);
      }, py::arg("signature"), py::arg("message"))
      .def("start", [](PyNode& n) { unwrap(n.get().start()); })
      .def("run_once", [](PyNode& n, double timeout) {
        nomq::Node& node = n.get();
        nomq::Result<void> r;
        {
          py::gil_scoped_release release;
          r = node.run_once(seconds(timeout));
        }
        unwrap(std::move(r));
      }, py::arg("timeout") = 0.0)
      .def("fd", [](PyNode& n) { return n.get().fd(); })
      .def("next_timeout", [](PyNode& n) -> std::optional<double> {
        auto t = n.get().next_timeout();
        if (!t) return std::nullopt;
        return std::chrono::duration<double>(*t).count();
      })
      .def("close", [](PyNode& n, double linger) {
        py::list out;
        if (!n.node_) return out;
        std::vector<nomq::Delivery> left;
        {
          py::gil_scoped_release release;
          left = n.node_->close(seconds(linger));
        }
        for (const auto& d : left) out.append(delivery_dict(d));
        return out;
      }, py::arg("linger") = 0.0)
      .def("stats", [](PyNode& n) {
        const nomq::NodeStats s = n.get().stats();
        py::dict d;
        d["datagrams_received"] = s.engine.datagrams_received;
        d["datagrams_sent"] = s.engine.datagrams_sent;
        d["messages_published"] = s.engine.messages_published;
        d["messages_delivered"] = s.engine.messages_delivered;
        d["retransmissions"] = s.engine.retransmissions;
        d["duplicates_suppressed"] = s.engine.duplicates_suppressed;
        d["dropped_total"] = s.engine.dropped_total;
        py::dict dropped;
        for (std::size_t i = 0; i < nomq::kErrcCount; ++i) {
          if (s.engine.dropped[i] != 0) {
            dropped[py::str(std::string{nomq::to_string(static_cast<nomq::Errc>(i))})] = s.engine.dropped[i];
          }
        }
        d["dropped"] = dropped;
        d["send_errors"] = s.send_errors;
        d["receive_errors"] = s.receive_errors;
        d["socket_reinits"] = s.socket_reinits;
        d["listener_overflows"] = s.listener_overflows;
        d["deferred_accepted"] = s.engine.deferred_accepted;
        d["deferred_refused"] = s.engine.deferred_refused;
        d["deferred_lapsed"] = s.engine.deferred_lapsed;
        return d;
      })
      .def_property_readonly("session_id", [](PyNode& n) { return n.get().session_id(); })
      .def_property_readonly("pending_count", [](PyNode& n) { return n.get().pending_count(); })
      .def_property_readonly("local_address", [](PyNode& n) { return endpoint_tuple(n.get().local_endpoint()); })
      .def_property_readonly("group", [](PyNode& n) { return endpoint_tuple(n.get().group()); })
      .def_property_readonly("wire", [](PyNode& n) { return std::string{nomq::to_string(n.get().wire())}; })
      .def_property_readonly("closed", [](PyNode& n) { return !n.node_; });

  m.def("set_log_level", [](const std::string& level) {
    auto l = nomq::parse_log_level(level);
    if (!l) {
      raise_error(nomq::Errc::invalid_argument,
                  "log_level must be DEBUG, INFO, WARNING, ERROR or OFF, got '" + level + "'");
    }
    nomq::set_log_level(*l);
  }, py::arg("level"), "Level of the library's log (spdlog, to stderr); case-insensitive.");

  m.def("create_config", [](const py::dict& config, const std::string& output_file, bool overwrite) {
    nomq::ConfigFormat format{};
    const nomq::NodeConfig c = config_from_dict(config, format);
    nomq::SaveOptions so;
    so.overwrite = overwrite;
    unwrap(nomq::save_config(c, output_file, format, so));
    return std::string{nomq::to_string(format)};
  }, py::arg("config"), py::arg("output_file"), py::arg("overwrite") = true,
  "Validates `config` and writes it: the original's format when it holds only the original's "
  "keys, ours (JSON) otherwise. Returns the format written ('legacy' or 'json').");

  m.def("generate_config", []() {
    // The original's API: the two raw keys (what its create_config writes, and what v1
    // devices need). `nomq keygen` writes the master-secret form (docs/config.md).
    const nomq::NodeConfig c = unwrap(nomq::generate_config(nomq::KeyForm::raw));
    return py::module_::import("json").attr("loads")(nomq::to_json_text(c));
  }, "A config (dict, our JSON keys) with fresh random raw keys (encryption_key, hmac_key) and "
     "every other key at its default.");

  m.def("read_config", [](const std::string& path) {
    auto loaded = nomq::load_config(path);
    if (!loaded) raise_error(loaded.error());
    py::dict d = py::module_::import("json").attr("loads")(nomq::to_json_text(loaded->config));
    return py::make_tuple(d, std::string{nomq::to_string(loaded->format)}, loaded->warning);
  }, py::arg("path"), "(config dict, 'json' or 'legacy', warning text) of a config file.");
}
