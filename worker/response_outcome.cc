// See response_outcome.h.
#include "worker/response_outcome.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace ringhttpd::worker {

// What a response fully written was: its status (what a service sent, or
// read back from the bytes: the one place that knows exactly what went) and
// its body bytes. Status 0 for none to count (a 100 Continue).
Outcome written_outcome(const ResponseSlot& slot) {
  Outcome o;
  if (slot.status != 0) {  // from a service: what it sent, as it came
    o.status = slot.status;
    o.body_bytes = slot.head_only ? 0 : slot.body_bytes;
    return o;
  }
  const std::string_view data = slot.data;
  if (data.size() < 12 || data[9] < '2' || data[9] > '5') return o;
  o.status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
  const size_t head_end = data.find("\r\n\r\n");
  o.body_bytes = head_end == std::string_view::npos ? 0 : data.size() - head_end - 4;
  o.body_bytes += slot.file_bytes;
  return o;
}

// What a response the connection ends before it is written whole amounts
// to: if any byte of it went out, its status and the body bytes that went
// (its bytes written past its head; at most the body); if none did, 499
// when the client went away (nginx's "client closed request") or 444 when
// the server closed (a deadline or timeout: nginx's "closed without a
// response"). A 100 Continue is none of these (status 0: not counted).
Outcome cut_outcome(const ResponseSlot& slot, Closer by) {
  if (slot.interim) return {};
  const Outcome none{by == Closer::client ? 499 : 444, 0};
  if (slot.written == 0) return none;
  Outcome o = written_outcome(slot);
  if (o.status == 0) return none;
  uint64_t head = slot.head_len;
  if (slot.status == 0) {  // the network process's own answer: its head is in `data`, whole
    const size_t end = slot.data.find("\r\n\r\n");
    head = end == std::string::npos ? slot.data.size() : end + 4;
  }
  o.body_bytes = std::min(o.body_bytes, slot.written > head ? slot.written - head : 0);
  return o;
}

}  // namespace ringhttpd::worker
