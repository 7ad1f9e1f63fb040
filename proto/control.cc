// sendmsg/recvmsg with SCM_RIGHTS for the control channel (see control.h).
#include "proto/control.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace ringhttpd::proto {
namespace {

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

// One sendmsg; returns the errno it failed with (0: sent), `error_text` set
// when it failed.
int send_message(int sock, const ControlMessage& msg, const std::vector<int>& fds,
                 std::string_view payload, bool dont_wait, std::string& error_text) {
  if (fds.size() > kMaxFdsPerMessage || payload.size() > kMaxControlPayload) {
    error_text = fds.size() > kMaxFdsPerMessage ? "send_control: too many descriptors"
                                                : "send_control: payload too large";
    return EINVAL;
  }
  iovec iov[2] = {{const_cast<ControlMessage*>(&msg), sizeof msg},
                  {const_cast<char*>(payload.data()), payload.size()}};
  msghdr hdr{};
  hdr.msg_iov = iov;
  hdr.msg_iovlen = payload.empty() ? 1 : 2;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    hdr.msg_control = control.data();
    hdr.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&hdr);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &hdr, MSG_NOSIGNAL | (dont_wait ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    error_text = errno_text("sendmsg(control)");
    return e;
  }
  if (static_cast<size_t>(n) != sizeof msg + payload.size()) {
    error_text = "sendmsg(control): short write";
    return EIO;
  }
  return 0;
}

}  // namespace

std::string send_control(int sock, const ControlMessage& msg, const std::vector<int>& fds,
                         std::string_view payload, bool dont_wait) {
  std::string error_text;
  send_message(sock, msg, fds, payload, dont_wait, error_text);
  return error_text;
}

SendStatus try_send_control(int sock, const ControlMessage& msg, const std::vector<int>& fds,
                            std::string_view payload, std::string& error_text) {
  error_text.clear();
  const int e = send_message(sock, msg, fds, payload, /*dont_wait=*/true, error_text);
  if (e == 0) return SendStatus::ok;
  return e == EAGAIN || e == EWOULDBLOCK || e == ETOOMANYREFS ? SendStatus::again
                                                              : SendStatus::error;
}

void close_unserved(UniqueFd fd) {
  ::shutdown(fd.get(), SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd.get(), sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
}

RecvStatus recv_control(int sock, ControlMessage& msg, std::vector<UniqueFd>& fds,
                        std::string& error_text, std::string* payload) {
  // One spare byte past the largest payload: a longer datagram shows as
  // MSG_TRUNC rather than passing as a complete one.
  static thread_local std::string buffer(kMaxControlPayload + 1, '\0');
  iovec iov[2] = {{&msg, sizeof msg}, {buffer.data(), buffer.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr hdr{};
  hdr.msg_iov = iov;
  hdr.msg_iovlen = 2;
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &hdr, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RecvStatus::again;
  // The peer died with messages of ours unread (killed at a stop or a
  // drain's deadline): an end like EOF, not an error worth a log line.
  if (n < 0 && errno == ECONNRESET) return RecvStatus::closed;
  if (n < 0) {
    error_text = errno_text("recvmsg(control)");
    return RecvStatus::error;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if (n == 0) return RecvStatus::closed;
  if (hdr.msg_flags & MSG_CTRUNC) {
    error_text = "recvmsg(control): control data truncated, descriptors lost";
    return RecvStatus::error;
  }
  if (static_cast<size_t>(n) < sizeof msg) {
    error_text = "recvmsg(control): short message";
    return RecvStatus::error;
  }
  const size_t extra = static_cast<size_t>(n) - sizeof msg;
  if ((hdr.msg_flags & MSG_TRUNC) || extra > kMaxControlPayload ||
      (extra > 0 && payload == nullptr)) {
    error_text = "recvmsg(control): unexpected payload of " + std::to_string(extra) + " bytes";
    return RecvStatus::error;
  }
  if (payload != nullptr) payload->assign(buffer.data(), extra);
  return RecvStatus::ok;
}

}  // namespace ringhttpd::proto
