// What a response amounted to for the access log and the metrics
// (worker/response_outcome.h): written whole, or cut short, whoever ended
// its connection and however much of it had been written.
#include "worker/response_outcome.h"

#include <gtest/gtest.h>

#include <string>

namespace ringhttpd::worker {
namespace {

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";

TEST(ResponseOutcome, AnAnswerWrittenWholeIsReadBackFromItsBytes) {
  ResponseSlot own;
  own.data = kHead + "0123456789";
  const Outcome o = written_outcome(own);
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(o.body_bytes, 10u);
  ResponseSlot file;  // a static file's head, then the file by sendfile
  file.data = kHead;
  file.file_bytes = 10;
  EXPECT_EQ(written_outcome(file).body_bytes, 10u);
  ResponseSlot service;  // a service's answer: what it said
  service.status = 201;
  service.body_bytes = 7;
  EXPECT_EQ(written_outcome(service).status, 201);
  EXPECT_EQ(written_outcome(service).body_bytes, 7u);
  ResponseSlot head_only;
  head_only.status = 200;
  head_only.body_bytes = 7;
  head_only.head_only = true;
  EXPECT_EQ(written_outcome(head_only).body_bytes, 0u);
  ResponseSlot interim;
  interim.data = "HTTP/1.1 100 Continue\r\n\r\n";
  EXPECT_EQ(written_outcome(interim).status, 0) << "not a response";
}

TEST(ResponseOutcome, NothingWrittenIs499WhenTheClientLeftAnd444WhenTheServerClosed) {
  ResponseSlot slot;
  slot.data = kHead + "0123456789";
  slot.ready = true;
  EXPECT_EQ(cut_outcome(slot, Closer::client).status, 499);
  EXPECT_EQ(cut_outcome(slot, Closer::server).status, 444);
  EXPECT_EQ(cut_outcome(slot, Closer::server).body_bytes, 0u);
  ResponseSlot waiting;  // still at the service: no bytes at all
  EXPECT_EQ(cut_outcome(waiting, Closer::client).status, 499);
  ResponseSlot streaming;  // its head arrived, nothing of it written yet
  streaming.status = 200;
  streaming.streaming = true;
  streaming.head_len = kHead.size();
  streaming.body_bytes = 5000;
  EXPECT_EQ(cut_outcome(streaming, Closer::client).status, 499);
}

TEST(ResponseOutcome, PartWrittenIsItsStatusWithTheBodyBytesPastItsHead) {
  ResponseSlot own;
  own.data = kHead + "0123456789";
  own.written = kHead.size() + 4;
  EXPECT_EQ(cut_outcome(own, Closer::client).status, 200);
  EXPECT_EQ(cut_outcome(own, Closer::client).body_bytes, 4u);
  own.written = 5;  // not even the head
  EXPECT_EQ(cut_outcome(own, Closer::server).status, 200);
  EXPECT_EQ(cut_outcome(own, Closer::server).body_bytes, 0u);
  ResponseSlot file;
  file.data = kHead;
  file.file_bytes = 1000;
  file.written = kHead.size() + 300;
  EXPECT_EQ(cut_outcome(file, Closer::client).body_bytes, 300u);
}

// A streamed answer drops what it wrote from its buffer as it goes (and,
// once its end arrived, is no longer "streaming"): the count comes from the
// bytes written, never from the buffer. Before, such a response read as not
// begun (444), or its body count wrapped below zero.
TEST(ResponseOutcome, AStreamedAnswerIsCountedFromItsBytesWrittenNotItsBuffer) {
  ResponseSlot done;
  done.status = 200;
  done.head_len = 120;
  done.body_bytes = 1 << 20;
  done.ready = true;
  done.data = std::string(300 * 1024, 'x');  // the tail still to write
  done.written = 120 + 700 * 1024;
  const Outcome o = cut_outcome(done, Closer::server);
  EXPECT_EQ(o.status, 200);
  EXPECT_EQ(o.body_bytes, 700u * 1024);
  done.written = 120 + (2 << 20);  // chunk framing counted too: never past the body
  EXPECT_EQ(cut_outcome(done, Closer::server).body_bytes, uint64_t{1} << 20);
}

TEST(ResponseOutcome, AnUnwritten100ContinueIsNothing) {
  ResponseSlot interim;
  interim.data = "HTTP/1.1 100 Continue\r\n\r\n";
  interim.interim = true;
  interim.ready = true;
  EXPECT_EQ(cut_outcome(interim, Closer::client).status, 0);
  EXPECT_EQ(cut_outcome(interim, Closer::server).status, 0);
}

}  // namespace
}  // namespace ringhttpd::worker
