// Encoding and bounds-checked decoding of the message heads carried in ring
// records (format drawn in ring_codec.h). Decoding never reads past the
// payload: a malformed record is refused, not trusted.
#include "proto/ring_codec.h"

#include <cstring>

namespace ringhttpd::proto {
namespace {

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// A cursor over a payload; any read past the end marks it failed.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  template <typename T>
  T get() {
    T v{};
    if (!ok_ || data_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string bytes(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void put_headers(const std::vector<Header>& headers, std::string& out) {
  for (const Header& h : headers) {
    put<uint16_t>(out, static_cast<uint16_t>(h.name.size()));
    put<uint32_t>(out, static_cast<uint32_t>(h.value.size()));
    out += h.name;
    out += h.value;
  }
}

void get_headers(Reader& in, uint16_t n, std::vector<Header>& headers) {
  headers.clear();
  headers.reserve(n);
  for (uint16_t i = 0; i < n && in.ok(); ++i) {
    const auto name_len = in.get<uint16_t>();
    const auto value_len = in.get<uint32_t>();
    std::string name = in.bytes(name_len);
    std::string value = in.bytes(value_len);
    headers.push_back({std::move(name), std::move(value)});
  }
}

}  // namespace

void encode_request_head(const HttpRequest& req, const RequestOrigin& origin, uint64_t body_length,
                         std::string& out) {
  put<uint32_t>(out, origin.network_pid);
  put<uint32_t>(out, origin.generation);
  put<uint32_t>(out, origin.network_index);
  put<uint8_t>(out, req.version_major);
  put<uint8_t>(out, req.version_minor);
  put<uint8_t>(out, req.keep_alive ? 1 : 0);
  put<uint8_t>(out, 0);
  put<uint64_t>(out, body_length);
  put<uint16_t>(out, static_cast<uint16_t>(req.method.size()));
  put<uint16_t>(out, static_cast<uint16_t>(req.headers.size()));
  put<uint32_t>(out, static_cast<uint32_t>(req.target.size()));
  out += req.method;
  out += req.target;
  put_headers(req.headers, out);
}

size_t decode_request_head(std::string_view payload, HttpRequest& req, RequestOrigin& origin,
                           uint64_t& body_length) {
  Reader in(payload);
  origin.network_pid = in.get<uint32_t>();
  origin.generation = in.get<uint32_t>();
  origin.network_index = in.get<uint32_t>();
  req.version_major = in.get<uint8_t>();
  req.version_minor = in.get<uint8_t>();
  req.keep_alive = in.get<uint8_t>() != 0;
  in.get<uint8_t>();
  body_length = in.get<uint64_t>();
  const auto method_len = in.get<uint16_t>();
  const auto n_headers = in.get<uint16_t>();
  const auto target_len = in.get<uint32_t>();
  req.method = in.bytes(method_len);
  req.target = in.bytes(target_len);
  get_headers(in, n_headers, req.headers);
  req.body.clear();
  return in.ok() ? in.pos() : 0;
}

void encode_response_head(int status, const std::vector<Header>& headers, uint64_t body_length,
                          std::string& out) {
  put<uint16_t>(out, static_cast<uint16_t>(status));
  put<uint16_t>(out, static_cast<uint16_t>(headers.size()));
  put<uint32_t>(out, 0);
  put<uint64_t>(out, body_length);
  put_headers(headers, out);
}

size_t decode_response_head(std::string_view payload, int& status, std::vector<Header>& headers,
                            uint64_t& body_length) {
  Reader in(payload);
  status = in.get<uint16_t>();
  const auto n_headers = in.get<uint16_t>();
  in.get<uint32_t>();
  body_length = in.get<uint64_t>();
  get_headers(in, n_headers, headers);
  if (status < 100 || status > 599) return 0;
  return in.ok() ? in.pos() : 0;
}

}  // namespace ringhttpd::proto
