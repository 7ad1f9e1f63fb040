// Test harness for integration tests: starts the real ringhttpd binary on a
// config with port 0, learns the port from its "ready" line, talks to it over
// raw sockets, and stops it. The test process is a child subreaper, so
// workers orphaned by a killed supervisor come back to it and are reaped.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ringhttpd::testing {

using Clock = std::chrono::steady_clock;

// Which executable: the shipped one, or the test build's (with the
// misbehaving handler types of tests/support/test_handlers.h).
enum class Binary { shipped, with_test_handlers };

// A config file in a temporary directory, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& contents);
  ~TempFile();
  const std::string& path() const { return path_; }
  void write(const std::string& contents);

 private:
  std::string path_;
};

// A working directory for one run of the binary, with an empty run/ in it,
// removed with everything in it on destruction: the default admin.socket
// (run/ringhttpd.sock, relative) then works, and servers running side by
// side never share one.
class WorkDir {
 public:
  WorkDir();
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }
  // The default admin socket of a server started here.
  std::string admin_socket() const { return path_ + "/run/ringhttpd.sock"; }

 private:
  std::string path_;
};

// How to start the binary beyond its arguments (systemd tests): extra
// environment variables ("NAME=value", added to the test's own), a command
// line put in front of the binary (e.g. systemd-socket-activate -l ADDR),
// and whether the constructor waits for the ready line (a socket-activated
// server starts only when a client connects: see Server::wait_ready).
struct Launch {
  std::vector<std::string> env;
  std::vector<std::string> wrapper;
  bool wait_ready = true;
  std::string cwd;  // "" = a WorkDir of its own (Server, run_binary)
  // Server only: its output stops being read once the ready line is in,
  // until Server::resume_output() (a reader of stderr that stalls).
  bool stall_output = false;
};

// Runs the binary with `args`; captures stdout+stderr. Returns exit status.
int run_binary(const std::vector<std::string>& args, std::string& output,
               Binary binary = Binary::shipped, const Launch& launch = {});

class Server {
 public:
  // Starts `ringhttpd serve -c <config>` and waits for its ready line.
  explicit Server(const std::string& config_json, Binary binary = Binary::shipped,
                  const Launch& launch = {});
  // Waits for the ready line and learns the port from it (the constructor
  // does this unless launch.wait_ready is false).
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  ~Server();  // SIGKILLs whatever is still running

  bool ready() const { return port_ != 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Its working directory, and the default admin socket there.
  const WorkDir& workdir() const { return workdir_; }
  std::string log() const;
  // Waits until the log contains `text`.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const;

  // Pids whose parent is the supervisor, and their /proc cmdline titles.
  std::map<pid_t, std::string> children() const;
  // The pid of the child whose title is exactly `title`, or -1.
  pid_t child(const std::string& title) const;

  // Sends `sig` (0: none), waits for the supervisor's exit; returns its
  // status or -1.
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::string segment_path() const;
  // Every /dev/shm segment of this instance (any generation).
  std::vector<std::string> segments() const;
  // Replaces the config file's contents (then SIGHUP reloads it).
  void rewrite_config(const std::string& config_json);
  // Reads the server's output again (after Launch::stall_output).
  void resume_output();

 private:
  void drain_output(int fd);

  TempFile config_;
  WorkDir workdir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string log_;
  bool stall_after_ready_ = false;  // Launch::stall_output, until resume_output()
};

// Waits until the server's end of the connection from `client_port` to
// `server_port` has nothing left unread in its socket (/proc/net/tcp's
// rx_queue): the server process read every byte the client sent.
bool wait_server_read_all(int server_port, int client_port, std::chrono::milliseconds timeout);

// True once every pid is gone (reaped or never ours), within the timeout.
bool wait_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

// A client connection to 127.0.0.1:port with receive timeouts.
class Client {
 public:
  // `rcvbuf` > 0 sets SO_RCVBUF before connecting (a slow reader's window).
  explicit Client(int port, int rcvbuf = 0);
  ~Client();
  bool connected() const { return fd_ >= 0; }
  // The socket (still owned by this object), to look at how the server left it.
  int fd() const { return fd_; }
  // This end's port (to find the connection in /proc/net/tcp), or 0.
  int local_port() const;
  bool send(const std::string& bytes);
  // Half-closes: no more bytes from this end (shutdown SHUT_WR).
  void shutdown_write();
  // Sends all of `bytes`, waiting at most `stall` each time the socket is
  // full; false when the peer stopped taking bytes for that long.
  bool send_nonblocking(const std::string& bytes, std::chrono::milliseconds stall);
  // Reads one HTTP response (head + Content-Length body). nullopt on
  // timeout or close before a full response.
  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
  };
  // `head_request`: the response to a HEAD carries no body bytes.
  std::optional<Response> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(10), bool head_request = false);
  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads everything until the peer closes; nullopt if it did not within
  // the timeout.
  std::optional<std::string> read_until_close(std::chrono::milliseconds timeout);

 private:
  bool fill(Clock::time_point deadline);
  int fd_ = -1;
  bool eof_ = false;  // the peer closed (recv returned 0 or failed)
  std::string buffer_;
};

// A one-shot request: connect, send, read one response.
std::optional<Client::Response> http_get(int port, const std::string& target);

// A TCP server of a test's own on 127.0.0.1 (any free port), one thread per
// connection: the stand-in for an upstream. `serve(fd)` runs for each
// connection; when it returns the connection is closed (and counted in
// closed()). The destructor shuts every connection down and joins every
// thread, so a test's server is gone when it goes out of scope; keep it the
// last member of whatever holds the state `serve` uses.
class LoopbackListener {
 public:
  explicit LoopbackListener(std::function<void(int fd)> serve);
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }  // accepted so far
  int closed() const { return closed_; }            // ended so far

 private:
  void accept_loop();
  void run(int fd);

  std::function<void(int)> serve_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, closed_{0};
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// A listener on 127.0.0.1 (any free port, a backlog of 0) whose accept
// queue fill() fills with connections it never accepts: connects to it
// then wait, their SYNs dropped (an upstream that does not connect in
// time). port() is 0 if it could not be set up.
class StuckListener {
 public:
  StuckListener();
  ~StuckListener();
  StuckListener(const StuckListener&) = delete;
  StuckListener& operator=(const StuckListener&) = delete;
  int port() const { return port_; }
  int fd() const { return fd_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void fill();
  // Closes the fillers: room in the queue again.
  void unfill();
  // Closes the listener: connects still waiting fail at their next SYN.
  void close();

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

}  // namespace ringhttpd::testing
