// Encoding and bounds-checked decoding of the message heads carried in ring
// records (format drawn in ring_codec.h). The record comes from another
// process, so decoding trusts nothing in it: every count and length is
// checked against the bytes actually present before it is used, nothing is
// allocated for a size the payload cannot back, and a misfit is refused.
// Encoding never narrows a value that does not fit its field.
#include "proto/ring_codec.h"

#include <cstring>
#include <limits>

namespace ringhttpd::proto {
namespace {

// What the encoder writes into a head's reserved field when it could not
// represent the head; decoders refuse any reserved field that is not 0.
constexpr uint8_t kUnrepresentable = 1;

// The smallest header entry: its two lengths, with an empty name and value.
constexpr size_t kMinHeaderEntry = 2 * sizeof(uint32_t);

bool fits_u32(uint64_t n) { return n <= std::numeric_limits<uint32_t>::max(); }

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// A cursor over a payload; any read past the end marks it failed, and every
// read after a failure is refused too, so callers check ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  template <typename T>
  T get() {
    T v{};
    if (!ok_ || remaining() < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // The check comes before the string exists: a length the payload cannot
  // hold allocates nothing.
  std::string bytes(uint64_t n) { return std::string(view(n)); }

  // The next n bytes in place.
  std::string_view view(uint64_t n) {
    if (!ok_ || remaining() < n) {
      ok_ = false;
      return {};
    }
    const std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  void fail() { ok_ = false; }
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool headers_fit(const std::vector<Header>& headers) {
  if (!fits_u32(headers.size())) return false;
  for (const Header& h : headers) {
    if (!fits_u32(h.name.size()) || !fits_u32(h.value.size())) return false;
  }
  return true;
}

// Bytes put_headers appends (only after headers_fit: no overflow then on a
// 64-bit size_t), so the output grows once.
size_t headers_bytes(const std::vector<Header>& headers) {
  size_t n = 0;
  for (const Header& h : headers) n += 2 * sizeof(uint32_t) + h.name.size() + h.value.size();
  return n;
}

// Only after headers_fit(headers): the casts below then lose nothing.
void put_headers(const std::vector<Header>& headers, std::string& out) {
  for (const Header& h : headers) {
    put<uint32_t>(out, static_cast<uint32_t>(h.name.size()));
    put<uint32_t>(out, static_cast<uint32_t>(h.value.size()));
    out += h.name;
    out += h.value;
  }
}

// Header (copies) or HeaderView (views into the payload).
template <typename H>
void get_headers(Reader& in, uint32_t n, std::vector<H>& headers) {
  headers.clear();
  // A count the rest of the payload cannot hold even with empty entries is
  // refused before anything is reserved for it: the reservation is then at
  // most a small multiple of the bytes the peer really sent.
  if (!in.ok() || n > in.remaining() / kMinHeaderEntry) return in.fail();
  headers.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const auto name_len = in.get<uint32_t>();
    const auto value_len = in.get<uint32_t>();
    const std::string_view name = in.view(name_len);
    const std::string_view value = in.view(value_len);
    if (!in.ok()) return;
    headers.push_back(H{decltype(H::name)(name), decltype(H::value)(value)});
  }
}

// The head ends where the reader is; what follows is the first piece of the
// body, so more of it than body_length is a misfit too.
size_t finish(const Reader& in, uint64_t body_length) {
  if (!in.ok() || in.remaining() > body_length) return 0;
  return in.pos();
}

}  // namespace

// Both request types: method, target and headers are read through the same
// names (std::string or std::string_view).
template <typename Request>
bool RequestHeadParts::build_as(const Request& req, const RequestOrigin& origin,
                                uint64_t body_length) {
  parts_.clear();
  lengths_.clear();
  bool fits = fits_u32(req.method.size()) && fits_u32(req.target.size()) &&
              fits_u32(req.headers.size()) && origin.client.size() <= kMaxClientText;
  for (const auto& h : req.headers)
    fits = fits && fits_u32(h.name.size()) && fits_u32(h.value.size());
  // An unrepresentable head keeps its fixed part (all lengths 0) so that it
  // is still a well-framed record, one the reserved byte makes refused.
  char* at = fixed_;
  auto put_at = [&at](auto v) {
    std::memcpy(at, &v, sizeof v);
    at += sizeof v;
  };
  put_at(uint32_t{origin.network_pid});
  put_at(uint32_t{origin.generation});
  put_at(uint32_t{origin.network_index});
  put_at(uint8_t{req.version_major});
  put_at(uint8_t{req.version_minor});
  put_at(uint8_t{req.keep_alive ? uint8_t{1} : uint8_t{0}});
  put_at(uint8_t{fits ? uint8_t{0} : kUnrepresentable});
  put_at(uint64_t{body_length});
  put_at(fits ? static_cast<uint32_t>(req.method.size()) : uint32_t{0});
  put_at(fits ? static_cast<uint32_t>(req.headers.size()) : uint32_t{0});
  put_at(fits ? static_cast<uint32_t>(req.target.size()) : uint32_t{0});
  put_at(fits ? static_cast<uint32_t>(origin.client.size()) : uint32_t{0});
  parts_.emplace_back(fixed_, sizeof fixed_);
  size_ = sizeof fixed_;
  if (!fits) return false;
  auto add = [this](std::string_view bytes) {
    if (bytes.empty()) return;
    parts_.push_back(bytes);
    size_ += bytes.size();
  };
  add(req.method);
  add(req.target);
  add(origin.client);
  lengths_.resize(req.headers.size());  // before any view into it is taken
  for (size_t i = 0; i < req.headers.size(); ++i) {
    const auto& h = req.headers[i];
    const uint32_t lengths[2] = {static_cast<uint32_t>(h.name.size()),
                                 static_cast<uint32_t>(h.value.size())};
    std::memcpy(lengths_[i].data(), lengths, sizeof lengths);
    add(std::string_view(lengths_[i].data(), lengths_[i].size()));
    add(h.name);
    add(h.value);
  }
  return true;
}

bool RequestHeadParts::build(const RequestHead& req, const RequestOrigin& origin,
                             uint64_t body_length) {
  return build_as(req, origin, body_length);
}

bool RequestHeadParts::build(const HttpRequest& req, const RequestOrigin& origin,
                             uint64_t body_length) {
  return build_as(req, origin, body_length);
}

void RequestHeadParts::append_to(std::string& out) const {
  out.reserve(out.size() + size_);
  for (std::string_view p : parts_) out.append(p);
}

bool encode_request_head(const HttpRequest& req, const RequestOrigin& origin, uint64_t body_length,
                         std::string& out) {
  RequestHeadParts parts;
  const bool ok = parts.build(req, origin, body_length);
  parts.append_to(out);
  return ok;
}

size_t decode_request_head(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                           uint64_t& body_length) {
  Reader in(payload);
  origin.network_pid = in.get<uint32_t>();
  origin.generation = in.get<uint32_t>();
  origin.network_index = in.get<uint32_t>();
  req.version_major = in.get<uint8_t>();
  req.version_minor = in.get<uint8_t>();
  const auto keep_alive = in.get<uint8_t>();
  const auto reserved = in.get<uint8_t>();
  body_length = in.get<uint64_t>();
  const auto method_len = in.get<uint32_t>();
  const auto n_headers = in.get<uint32_t>();
  const auto target_len = in.get<uint32_t>();
  const auto client_len = in.get<uint32_t>();
  if (!in.ok() || keep_alive > 1 || reserved != 0 || client_len > kMaxClientText) return 0;
  req.keep_alive = keep_alive == 1;
  req.method = in.bytes(method_len);
  req.target = in.bytes(target_len);
  origin.client = in.bytes(client_len);
  get_headers(in, n_headers, req.headers);
  req.body.clear();
  return finish(in, body_length);
}

size_t response_head_bytes(const std::vector<Header>& headers) {
  return headers_fit(headers) ? 16 + headers_bytes(headers) : SIZE_MAX;
}

bool encode_response_head(int status, const std::vector<Header>& headers, uint64_t body_length,
                          std::string& out) {
  const bool fits =
      status >= 0 && status <= std::numeric_limits<uint16_t>::max() && headers_fit(headers);
  if (fits) out.reserve(out.size() + response_head_bytes(headers));
  put<uint16_t>(out, fits ? static_cast<uint16_t>(status) : 0);
  put<uint16_t>(out, fits ? 0 : kUnrepresentable);
  put<uint32_t>(out, fits ? static_cast<uint32_t>(headers.size()) : 0);
  put<uint64_t>(out, body_length);
  if (!fits) return false;
  put_headers(headers, out);
  return true;
}

namespace {

template <typename H>
size_t decode_response_head_as(std::string_view payload, int& status, std::vector<H>& headers,
                               uint64_t& body_length) {
  Reader in(payload);
  const auto code = in.get<uint16_t>();
  const auto reserved = in.get<uint16_t>();
  const auto n_headers = in.get<uint32_t>();
  body_length = in.get<uint64_t>();
  if (!in.ok() || reserved != 0 || code < 100 || code > 599) return 0;
  status = code;
  get_headers(in, n_headers, headers);
  return finish(in, body_length);
}

}  // namespace

size_t decode_response_head(std::string_view payload, int& status, std::vector<Header>& headers,
                            uint64_t& body_length) {
  return decode_response_head_as(payload, status, headers, body_length);
}

size_t decode_response_head(std::string_view payload, int& status, std::vector<HeaderView>& headers,
                            uint64_t& body_length) {
  return decode_response_head_as(payload, status, headers, body_length);
}

std::string encode_credit(uint64_t bytes) {
  std::string out;
  put<uint64_t>(out, bytes);
  return out;
}

bool decode_credit(std::string_view payload, uint64_t& bytes) {
  if (payload.size() != sizeof(uint64_t)) return false;
  std::memcpy(&bytes, payload.data(), sizeof bytes);
  return bytes != 0;
}

void own_head_views(std::string_view head, std::vector<HeaderView>& headers, std::string& copy) {
  copy.assign(head.data(), head.size());
  const char* const from = head.data();
  const auto rebase = [&](std::string_view v) {
    return std::string_view(copy.data() + (v.data() - from), v.size());
  };
  for (HeaderView& h : headers) {
    h.name = rebase(h.name);
    h.value = rebase(h.value);
  }
}

}  // namespace ringhttpd::proto
