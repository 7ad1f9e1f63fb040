// Who the children run as: the top-level config keys `user` and `group`,
// resolved at load, and the drop itself, done in each child right after
// fork.
//
// The model is nginx's. The supervisor, started as root, stays root: it
// binds the listeners (also new ones a reload adds, possibly below port
// 1024), creates the shared-memory segments and raises RLIMIT_NOFILE, and
// creates the admin socket (that code lives with the admin socket; it runs
// in the supervisor, before or after forking, so as root too) -- all before
// any child is forked. It runs no request-handling code: it reads the config
// file, signals, and the children's control messages. Every child
// (network and service processes) gives up root before it does anything
// else: supplementary groups, then the group, then the user. It keeps only
// descriptors and mappings the supervisor opened for it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ringhttpd::master {

struct RunAsConfig {
  std::string user;   // "" = the children run as the supervisor does
  std::string group;  // "" = the user's primary group; only with `user`
  // Resolved at load, valid when !user.empty():
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups: the user's (getgrouplist), with gid
};

// Looks the names up (getpwnam_r, getgrnam_r, getgrouplist) and fills the
// ids. Appends "user: ..." / "group: ..." errors: a user or group that does
// not exist on this machine, an empty name, `group` without `user`.
void resolve_run_as(RunAsConfig& run_as, std::vector<std::string>& errors);

// Whether the children of a supervisor with effective uid `euid` change
// identity: only root can, and only when `user` is set. Pure.
bool will_drop_privileges(const RunAsConfig& run_as, uid_t euid);

// In a child, right after fork, before anything else: setgroups, setgid,
// setuid, in that order (the group calls need root, so they come first), each
// checked, then a check that root cannot be regained. Returns "" or a message
// naming the failing call. Must run before PR_SET_PDEATHSIG is set: a change
// of credentials clears the parent-death signal.
std::string drop_privileges(const RunAsConfig& run_as);

// Gives a file the supervisor created for the children (a shared-memory
// segment under /dev/shm) to the run-as user, so that a child can remove it
// when the supervisor died (the sticky /dev/shm lets only the owner unlink).
// Returns "" or a message naming the failing call.
std::string give_to_run_as(const RunAsConfig& run_as, const std::string& path);

}  // namespace ringhttpd::master
