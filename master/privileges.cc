// The `user`/`group` lookups and the privilege drop (see privileges.h).
#include "master/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "master/config.h"

namespace ringhttpd::master {
namespace {

// getpwnam_r/getgrnam_r want a buffer; a huge group (many members) needs a
// larger one: ERANGE asks for it. The bound keeps a broken NSS from
// making this grow without end.
constexpr size_t kMaxLookupBuffer = size_t{1} << 22;

bool lookup_user(const std::string& name, passwd& out, std::vector<char>& buf) {
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(name.c_str(), &out, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < kMaxLookupBuffer) {
    buf.resize(buf.size() * 2);
  }
  return rc == 0 && found != nullptr;
}

bool lookup_group(const std::string& name, gid_t& gid) {
  std::vector<char> buf(16384);
  group grp{};
  group* found = nullptr;
  int rc;
  while ((rc = ::getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < kMaxLookupBuffer) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || found == nullptr) return false;
  gid = grp.gr_gid;
  return true;
}

// Built by append: GCC 12 warns falsely (-Wrestrict) on "\"" + string.
std::string quote(const std::string& s) {
  std::string out = "\"";
  out.append(escape_text(s)).append("\"");
  return out;
}

bool bad_name(const std::string& s) { return s.empty() || s.find('\0') != std::string::npos; }

std::string errno_text(const std::string& call) { return call + ": " + std::strerror(errno); }

}  // namespace

void resolve_run_as(RunAsConfig& run_as, std::vector<std::string>& errors) {
  if (run_as.user.empty()) {
    if (!run_as.group.empty()) errors.push_back("group: needs \"user\" (whose group to change)");
    return;
  }
  std::vector<char> buf(16384);
  passwd pw{};
  if (bad_name(run_as.user) || !lookup_user(run_as.user, pw, buf)) {
    errors.push_back("user: no user named " + quote(run_as.user) + " on this machine");
    return;
  }
  run_as.uid = pw.pw_uid;
  run_as.gid = pw.pw_gid;
  if (!run_as.group.empty()) {
    if (bad_name(run_as.group) || !lookup_group(run_as.group, run_as.gid)) {
      errors.push_back("group: no group named " + quote(run_as.group) + " on this machine");
      return;
    }
  }
  // The user's supplementary groups, as login would give them (nginx calls
  // initgroups() in each worker; resolving once here keeps NSS lookups out
  // of the children).
  int n = 32;
  run_as.groups.assign(static_cast<size_t>(n), 0);
  while (::getgrouplist(pw.pw_name, run_as.gid, run_as.groups.data(), &n) < 0 && n < 65536) {
    run_as.groups.assign(static_cast<size_t>(std::max(n, 64) * 2), 0);
    n = static_cast<int>(run_as.groups.size());
  }
  run_as.groups.resize(static_cast<size_t>(std::max(n, 0)));
}

bool will_drop_privileges(const RunAsConfig& run_as, uid_t euid) {
  return euid == 0 && !run_as.user.empty();
}

std::string drop_privileges(const RunAsConfig& run_as) {
  if (::setgroups(run_as.groups.size(), run_as.groups.data()) < 0) return errno_text("setgroups");
  if (::setgid(run_as.gid) < 0) return errno_text("setgid(" + std::to_string(run_as.gid) + ")");
  if (::setuid(run_as.uid) < 0) return errno_text("setuid(" + std::to_string(run_as.uid) + ")");
  // Paranoia that costs nothing: with the bounding set or a security module
  // in the way, setuid may leave a way back. A process that can become root
  // again has not dropped anything.
  if (run_as.uid != 0 && ::setuid(0) == 0) return "setuid(0) succeeded after the drop";
  return "";
}

std::string give_to_run_as(const RunAsConfig& run_as, const std::string& path) {
  if (!will_drop_privileges(run_as, ::geteuid())) return "";
  if (::chown(path.c_str(), run_as.uid, run_as.gid) < 0) return errno_text("chown " + path);
  return "";
}

}  // namespace ringhttpd::master
