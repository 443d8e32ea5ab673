#include "support/subprocess.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace nomq::test {

namespace {
using Clock = std::chrono::steady_clock;
}

Process Process::spawn(const std::vector<std::string>& argv, const std::optional<std::string>& stdin_text,
                       bool keep_stdin_open) {
  int out[2], err[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  ::close(in[0]);
  if (stdin_text) {
    // Small inputs only (tests): fits the pipe buffer, so this cannot block.
    [[maybe_unused]] auto w = ::write(in[1], stdin_text->data(), stdin_text->size());
  }
  Process p;
  if (keep_stdin_open)
    p.in_fd_ = in[1];
  else
    ::close(in[1]);
  p.pid_ = pid;
  p.out_fd_ = out[0];
  p.err_fd_ = err[0];
  p.argv0_ = argv.empty() ? "" : argv[0];
  ::fcntl(p.out_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(p.err_fd_, F_SETFL, O_NONBLOCK);
  return p;
}

Process::Process(Process&& o) noexcept { *this = std::move(o); }

void Process::write_stdin(const std::string& text) {
  if (in_fd_ >= 0) {
    [[maybe_unused]] auto w = ::write(in_fd_, text.data(), text.size());
  }
}

void Process::close_stdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

Process& Process::operator=(Process&& o) noexcept {
  std::swap(pid_, o.pid_);
  std::swap(out_fd_, o.out_fd_);
  std::swap(err_fd_, o.err_fd_);
  std::swap(in_fd_, o.in_fd_);
  std::swap(out_, o.out_);
  std::swap(err_, o.err_);
  std::swap(status_, o.status_);
  std::swap(argv0_, o.argv0_);
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  if (in_fd_ >= 0) ::close(in_fd_);
}

void Process::pump(Millis timeout) {
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) return;
  if (::poll(fds, static_cast<nfds_t>(n), static_cast<int>(timeout.count())) <= 0) return;
  for (int i = 0; i < n; ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buf[4096];
    for (;;) {
      const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (fds[i].fd == out_fd_ ? out_ : err_).append(buf, static_cast<std::size_t>(r));
        continue;
      }
      if (r == 0) {  // EOF
        ::close(fds[i].fd);
        (fds[i].fd == out_fd_ ? out_fd_ : err_fd_) = -1;
      }
      break;
    }
  }
}

bool Process::reap(bool block) {
  if (status_) return true;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  if (r != pid_) return false;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return true;
}

std::optional<std::string> Process::wait_for_line(Stream s, std::string_view needle, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::string& text = s == Stream::out ? out_ : err_;
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = text.find('\n', start);
      if (end == std::string::npos) break;
      std::string_view line{text.data() + start, end - start};
      if (line.find(needle) != std::string_view::npos) return std::string{line};
      start = end + 1;
    }
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    if (out_fd_ < 0 && err_fd_ < 0) return std::nullopt;  // exited, nothing more will come
    pump(std::chrono::duration_cast<Millis>(deadline - now) + Millis{1});
  }
}

bool Process::wait_for_lines(Stream s, std::size_t n, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::string& text = s == Stream::out ? out_ : err_;
    if (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) >= n) return true;
    const auto now = Clock::now();
    if (now >= deadline || (out_fd_ < 0 && err_fd_ < 0)) return false;
    pump(std::chrono::duration_cast<Millis>(deadline - now) + Millis{1});
  }
}

std::optional<int> Process::wait_exit(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  // The pipes close when the process exits (unless it leaked them to a child): wait on them.
  while (out_fd_ >= 0 || err_fd_ >= 0) {
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    pump(std::chrono::duration_cast<Millis>(deadline - now) + Millis{1});
  }
  while (!reap(false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    // The pipes are closed, so exit is imminent; a short bounded wait for the zombie.
    pollfd none{};
    ::poll(&none, 0, 5);
  }
  return status_;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool Process::running() { return pid_ > 0 && !reap(false); }

std::vector<std::string> Process::out_lines() const {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < out_.size()) {
    const std::size_t end = out_.find('\n', start);
    if (end == std::string::npos) break;
    lines.push_back(out_.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::string Process::transcript() const {
  return "--- " + argv0_ + " stdout:\n" + out_ + "--- stderr:\n" + err_ + "---";
}

std::uint16_t free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  socklen_t len = sizeof sin;
  ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  ::close(fd);
  return ntohs(sin.sin_port);
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "nomq-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace nomq::test
