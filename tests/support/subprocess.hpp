// Child processes for process-level tests: spawn with pipes, wait for a line on stdout/stderr
// or for exit, each with a bounded timeout; killed on destruction. Tests synchronise on output,
// never on sleeps.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nomq::test {

using Millis = std::chrono::milliseconds;

class Process {
 public:
  enum class Stream { out, err };

  // argv[0] is the program path (no PATH lookup). `stdin_text`: written, then stdin closed;
  // nullopt: stdin is /dev/null.
  // `keep_stdin_open`: stdin stays a pipe for write_stdin()/close_stdin().
  static Process spawn(const std::vector<std::string>& argv,
                       const std::optional<std::string>& stdin_text = std::nullopt,
                       bool keep_stdin_open = false);
  void write_stdin(const std::string& text);
  void close_stdin();
  Process() = default;
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // Waits until the stream holds a line containing `needle` (searching from the start).
  // Returns that line, or nullopt on timeout or if the process exits first.
  std::optional<std::string> wait_for_line(Stream s, std::string_view needle, Millis timeout);
  // Waits until the stream holds `n` complete lines.
  bool wait_for_lines(Stream s, std::size_t n, Millis timeout);
  // The exit code (128 + signal if killed by one), or nullopt on timeout.
  std::optional<int> wait_exit(Millis timeout);
  void signal(int sig);
  bool running();
  int pid() const { return pid_; }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  std::vector<std::string> out_lines() const;
  // For failure messages: both streams.
  std::string transcript() const;

 private:
  void pump(Millis timeout);  // reads what is available, waiting up to `timeout` for something
  bool reap(bool block);

  int pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int in_fd_ = -1;
  std::string out_, err_;
  std::optional<int> status_;
  std::string argv0_;
};

// A UDP port that is free right now (bound then released), for a test's own group port.
std::uint16_t free_udp_port();

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace nomq::test
