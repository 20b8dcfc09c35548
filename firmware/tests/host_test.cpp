// Runs the sketch's logic on a PC against the stand-ins in host/, scenario by
// scenario. Prints one JSON line per frame the sketch sent:
//   {"scenario": ..., "hex": ..., "ok": ..., "expect": {<field>: <value>}}
// where expect holds what the scenario fed the stand-ins, in payload units,
// for tests/firmware/test_firmware.py to compare with the decoded frame. Budget and
// timing problems go to stderr and make the exit status 1.

#include <Akeru.h>
#include <Arduino.h>
#include <stdarg.h>
#include <stdio.h>

#include <deque>
#include <functional>
#include <string>

#include "sensor_logic.h"

namespace {

const uint64_t SECOND_MS = 1000;
const uint64_t MINUTE_MS = 60 * SECOND_MS;
const uint64_t HOUR_MS = 60 * MINUTE_MS;
const uint64_t DAY_MS = 24 * HOUR_MS;
const uint64_t WRAP_MS = 1ULL << 32;
const size_t MAX_UPLINKS_PER_DAY = 140;

// loop() runs about once a second on the board (each AT command takes time).
const uint64_t LOOP_STEP_MS = SECOND_MS;
// A slot starts up to one loop step late; the readings before a send add
// two AT commands, absent before a downlink request.
const uint64_t SLOT_SLACK_MS = LOOP_STEP_MS + 2 * Akeru::AT_COMMAND_MS;

int failures = 0;

void fail(const char *scenario, const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "FAIL %s: ", scenario);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  ++failures;
}

void check(bool ok, const char *scenario, const char *what) {
  if (!ok) fail(scenario, "%s", what);
}

const char *jsonBool(bool value) { return value ? "true" : "false"; }

bool serialHas(const std::string &text) { return host::serial.find(text) != std::string::npos; }

// What a scenario feeds the stand-ins, in the payload's units.
struct Inputs {
  int temp_c;
  bool temp_ok;
  uint16_t vbat_mv;
  bool vbat_ok;
  uint16_t analog_raw;
  long random_value;
};

// A downlink answer and the settings the sketch should have after it.
struct ScriptedDownlink {
  uint16_t interval_s;
  bool demo;
};

class Scenario {
 public:
  typedef std::function<void(Scenario &, uint64_t elapsed_ms)> Tick;

  Scenario(const char *name, uint64_t start_ms, int analog_pin, bool demo_at_boot)
      : name_(name),
        start_ms_(start_ms),
        analog_pin_(analog_pin),
        modem_(5, 4),
        sensor_(modem_, analog_pin, demo_at_boot),
        interval_s_(MIN_INTERVAL_S),
        demo_(demo_at_boot),
        last_send_failed_(false),
        boot_(true),
        observed_(0) {
    in = Inputs{20, true, 3300, true, 0, 0};
    host::reset(start_ms);
    if (!sensor_.begin()) fail(name_, "begin() failed");
    check(serialHas("payload config: " PAYLOAD_CONFIG), name_, "begin() did not print the payload config");
  }

  Inputs in;

  Akeru &modem() { return modem_; }
  SensorLogic &sensor() { return sensor_; }
  const char *name() const { return name_; }

  // Queues the modem's answer to the next receive() that gets none yet.
  void scriptDownlink(const char *answer, uint16_t interval_s, bool demo) {
    modem_.downlinks.push_back(answer);
    expected_.push_back(ScriptedDownlink{interval_s, demo});
  }

  void run(uint64_t duration_ms, Tick on_tick = Tick()) {
    const uint64_t end_ms = host::clock_ms + duration_ms;
    while (host::clock_ms < end_ms) {
      if (on_tick) on_tick(*this, host::clock_ms - start_ms_);
      feed();
      sensor_.poll();
      observe();
      host::clock_ms += LOOP_STEP_MS;
    }
    if (modem_.uplinks.empty()) return;
    const uint64_t quiet_ms = host::clock_ms - modem_.uplinks.back().at_ms;
    if (quiet_ms > interval_s_ * SECOND_MS + SLOT_SLACK_MS) {
      fail(name_, "stalled: no uplink for the last %llu ms", (unsigned long long)quiet_ms);
    }
  }

  size_t dataFrames() const {
    size_t count = 0;
    for (const Akeru::Uplink &uplink : modem_.uplinks) count += !uplink.downlink_request;
    return count;
  }

 private:
  void feed() {
    modem_.temperature_c = in.temp_c;
    modem_.temperature_ok = in.temp_ok;
    modem_.voltage_v = in.vbat_mv / 1000.0f;
    modem_.voltage_ok = in.vbat_ok;
    if (analog_pin_ != NO_ANALOG_PIN) host::analog_values[analog_pin_] = in.analog_raw;
    host::random_value = in.random_value;
  }

  void observe() {
    for (; observed_ < modem_.uplinks.size(); ++observed_) {
      const Akeru::Uplink &uplink = modem_.uplinks[observed_];
      checkTiming(uplink);
      if (uplink.downlink_request) {
        applyScriptedDownlink(uplink);
      } else {
        printFrame(uplink);
        checkSerialReport(uplink);
        last_send_failed_ = !uplink.ok;
        boot_ = boot_ && !uplink.ok;
      }
    }
  }

  void checkTiming(const Akeru::Uplink &uplink) {
    const uint64_t at_ms = uplink.at_ms;
    if (observed_ == 0) {
      if (at_ms - start_ms_ > Akeru::BEGIN_MS + Akeru::AT_COMMAND_MS + SLOT_SLACK_MS) {
        fail(name_, "first uplink came %llu ms after power-on, too late", (unsigned long long)(at_ms - start_ms_));
      }
    } else {
      const uint64_t gap_ms = at_ms - modem_.uplinks[observed_ - 1].at_ms;
      const uint64_t due_ms = interval_s_ * SECOND_MS;
      if (gap_ms < MIN_INTERVAL_MS) {
        fail(name_, "uplink %zu came %llu ms after the previous one, below the %lu ms minimum",
             observed_, (unsigned long long)gap_ms, (unsigned long)MIN_INTERVAL_MS);
      }
      if (gap_ms < due_ms || gap_ms > due_ms + SLOT_SLACK_MS) {
        fail(name_, "uplink %zu came %llu ms after the previous one, expected %llu ms",
             observed_, (unsigned long long)gap_ms, (unsigned long long)due_ms);
      }
    }
    size_t in_last_day = 0;
    for (size_t i = 0; i <= observed_; ++i) in_last_day += modem_.uplinks[i].at_ms + DAY_MS > at_ms;
    if (in_last_day > MAX_UPLINKS_PER_DAY) {
      fail(name_, "%zu uplinks within 24 hours", in_last_day);
    }
  }

  void applyScriptedDownlink(const Akeru::Uplink &uplink) {
    if (expected_.empty()) return;
    if (uplink.ok) {
      interval_s_ = expected_.front().interval_s;
      demo_ = expected_.front().demo;
    }
    expected_.pop_front();
    if (sensor_.intervalS() != interval_s_ || sensor_.demoMode() != demo_) {
      fail(name_, "after downlink %s: interval %u s, demo %d; expected %u s, demo %d", uplink.hex.c_str(),
           sensor_.intervalS(), sensor_.demoMode(), interval_s_, demo_);
    }
  }

  void checkSerialReport(const Akeru::Uplink &uplink) {
    const std::string report = (uplink.ok ? "sent " : "send failed: ") + uplink.hex;
    if (!serialHas(report)) fail(name_, "Serial does not say \"%s\"", report.c_str());
  }

  void printFrame(const Akeru::Uplink &uplink) {
    const bool analog_on = analog_pin_ != NO_ANALOG_PIN;
    int temp_c = in.temp_ok ? in.temp_c : TEMP_UNREADABLE;
    if (demo_) temp_c = (int)(in.random_value % 100);
    printf(
        "{\"scenario\": \"%s\", \"hex\": \"%s\", \"ok\": %s, \"expect\": {\"temp\": %d, \"vbat_mv\": %u, "
        "\"analog_raw\": %u, \"interval_s\": %u, \"demo\": %s, \"temp_error\": %s, \"vbat_error\": %s, "
        "\"last_send_failed\": %s, \"analog_on\": %s, \"boot\": %s}}\n",
        name_, uplink.hex.c_str(), jsonBool(uplink.ok), temp_c, in.vbat_ok ? in.vbat_mv : 0,
        analog_on ? in.analog_raw : 0, interval_s_, jsonBool(demo_), jsonBool(!demo_ && !in.temp_ok),
        jsonBool(!in.vbat_ok), jsonBool(last_send_failed_), jsonBool(analog_on), jsonBool(boot_));
  }

  const char *name_;
  uint64_t start_ms_;
  int analog_pin_;
  Akeru modem_;
  SensorLogic sensor_;
  std::deque<ScriptedDownlink> expected_;
  // The settings and flags the scenario expects the sketch to have now.
  uint16_t interval_s_;
  bool demo_;
  bool last_send_failed_;
  bool boot_;
  size_t observed_;
};

void checkFrames(Scenario &scenario, size_t at_least) {
  if (scenario.dataFrames() < at_least) {
    fail(scenario.name(), "%zu data frames, expected at least %zu", scenario.dataFrames(), at_least);
  }
}

// ---- checks of the pure helpers (they print no frames) ----

void checkDownlink(const char *text, bool valid, int demo, uint16_t interval_s) {
  DownlinkCommand command = {7, 7};
  const bool parsed = parseDownlink(text, &command);
  if (parsed != valid || (valid && (command.demo != demo || command.interval_s != interval_s))) {
    fail("parse_downlink", "\"%s\" gave %d (demo %d, interval %u s)", text, parsed, command.demo, command.interval_s);
  }
}

void unitChecks() {
  checkDownlink("0101038400000000", true, 1, 900);
  checkDownlink("01FF0E1000000000", true, -1, 3600);
  checkDownlink("0100000000000000", true, 0, 0);
  checkDownlink("=01 02 00 3c 00 00 00 00", true, -1, 60);  // as the Snootlab receive() leaves it
  checkDownlink("0201038400000000", false, 0, 0);           // another layout version
  checkDownlink("01010384000000", false, 0, 0);             // 7 bytes
  checkDownlink("010103840000000000", false, 0, 0);         // 9 bytes
  checkDownlink("0101038400000g00", false, 0, 0);
  checkDownlink("", false, 0, 0);

  const Reading reading = {-5, 3300, 1023, 618, FLAG_DEMO | FLAG_BOOT};
  uint8_t frame[PAYLOAD_LEN];
  encodePayload(reading, frame);
  const uint8_t expected[PAYLOAD_LEN] = {0xfb, 0xe4, 0x0c, 0xff, 0x03, 0x6a, 0x02, 0x21};
  for (uint8_t i = 0; i < PAYLOAD_LEN; ++i) {
    if (frame[i] != expected[i]) fail("encode_payload", "byte %u is %02x, expected %02x", i, frame[i], expected[i]);
  }

  check(intervalElapsed(5, 0xFFFFFFF0u, 21), "interval_elapsed", "21 ms across the wrap not seen as elapsed");
  check(!intervalElapsed(4, 0xFFFFFFF0u, 21), "interval_elapsed", "20 ms across the wrap seen as 21");

  Akeru mute_modem(5, 4);
  mute_modem.modem_answers = false;
  SensorLogic sensor(mute_modem, NO_ANALOG_PIN, false);
  host::reset(0);
  check(!sensor.begin(), "modem_silent", "begin() succeeded without a modem");
}

// ---- scenarios (each prints frames) ----

void normalReadings() {
  Scenario s("normal_readings", 0, A1, false);
  s.run(4 * HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    const uint64_t minute = elapsed_ms / MINUTE_MS;
    sc.in.temp_c = 18 + minute % 8;
    sc.in.vbat_mv = 3300 - minute / 10;
    sc.in.analog_raw = minute < 30 ? 1023 : (minute * 37) % 1024;
  });
  checkFrames(s, 20);
  check(serialHas("no downlink"), s.name(), "the unanswered downlink request was not reported");
}

void negativeTemperatures() {
  Scenario s("negative_temperatures", 0, NO_ANALOG_PIN, false);
  s.run(5 * HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    sc.in.temp_c = -40 + (int)(elapsed_ms / (7 * MINUTE_MS)) % 40;
    // A cold battery sags; 2008 and 2011 mV come back 1 mV short if truncated.
    sc.in.vbat_mv = 2008 + 3 * (elapsed_ms / HOUR_MS);
  });
  checkFrames(s, 25);
}

void millisOverflow() {
  const uint64_t start_ms = WRAP_MS - 30 * MINUTE_MS;
  Scenario s("millis_overflow", start_ms, A2, false);
  s.in.analog_raw = 700;
  s.in.temp_c = 11;
  s.run(4 * HOUR_MS);
  checkFrames(s, 20);
  size_t before = 0, after = 0;
  for (const Akeru::Uplink &uplink : s.modem().uplinks) (uplink.at_ms < WRAP_MS ? before : after) += 1;
  check(before >= 2 && after >= 10, s.name(), "uplinks did not continue across the wrap of millis()");
  check(millis() < start_ms, s.name(), "millis() did not wrap");
}

void budgetOverTwoDays() {
  Scenario s("budget_two_days", 12345, NO_ANALOG_PIN, false);
  s.run(2 * DAY_MS + HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    sc.in.temp_c = (int)(elapsed_ms / HOUR_MS) % 30 - 5;
  });
  size_t first_day = 0;
  for (const Akeru::Uplink &uplink : s.modem().uplinks) first_day += uplink.at_ms < 12345 + DAY_MS;
  if (first_day < MAX_UPLINKS_PER_DAY - 2 || first_day > MAX_UPLINKS_PER_DAY) {
    fail(s.name(), "%zu uplinks in the first day, expected close to %zu", first_day, MAX_UPLINKS_PER_DAY);
  }
}

void downlinkInterval() {
  Scenario s("downlink_interval", 0, NO_ANALOG_PIN, false);
  s.scriptDownlink("=01ff0e1000000000", 3600, false);  // the Snootlab receive() keeps the '='
  s.run(8 * HOUR_MS);
  check(s.sensor().intervalS() == 3600, s.name(), "interval not set to 3600 s");
  check(serialHas("downlink applied: interval 3600 s, demo off"), s.name(), "downlink not reported");
  checkFrames(s, 7);
}

void downlinkIntervalClamped() {
  Scenario s("downlink_interval_clamped", 0, NO_ANALOG_PIN, false);
  s.scriptDownlink("01ff003c00000000", MIN_INTERVAL_S, false);  // asks for 60 s
  s.run(3 * HOUR_MS);
  check(s.sensor().intervalS() == MIN_INTERVAL_S, s.name(), "interval below the minimum not clamped");
  checkFrames(s, 15);
}

void downlinkIgnored() {
  Scenario s("downlink_ignored", 0, NO_ANALOG_PIN, false);
  s.scriptDownlink("02010e1000000000", MIN_INTERVAL_S, false);  // layout version 2
  s.scriptDownlink("0101", MIN_INTERVAL_S, false);              // too short
  s.run(7 * HOUR_MS);
  check(serialHas("downlink ignored: 02010e1000000000"), s.name(), "wrong version not reported");
  check(serialHas("downlink ignored: 0101"), s.name(), "short downlink not reported");
  checkFrames(s, 35);
}

void demoToggle() {
  Scenario s("demo_toggle", 0, NO_ANALOG_PIN, false);
  s.in.temp_c = -3;
  s.scriptDownlink("0101000000000000", MIN_INTERVAL_S, true);
  s.scriptDownlink("0100000000000000", MIN_INTERVAL_S, false);
  s.run(7 * HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    sc.in.random_value = (long)(elapsed_ms / SECOND_MS) * 7919;
  });
  check(serialHas("demo on") && serialHas("demo off"), s.name(), "demo mode not switched on and off");
  check(!s.sensor().demoMode(), s.name(), "demo mode still on");
  checkFrames(s, 35);
}

void demoAtBoot() {
  Scenario s("demo_at_boot", 0, NO_ANALOG_PIN, true);
  s.in.temp_ok = false;  // demo mode does not read the modem's temperature
  s.run(HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    sc.in.random_value = (long)(elapsed_ms / SECOND_MS) + 99;
  });
  checkFrames(s, 1);
}

void failedSend() {
  Scenario s("failed_send", 0, A3, false);
  s.in.analog_raw = 42;
  s.modem().failing_sends.insert(0);  // the boot frame
  s.modem().failing_sends.insert(3);
  s.run(3 * HOUR_MS);
  check(serialHas("send failed: "), s.name(), "failure not reported on Serial");
  checkFrames(s, 15);
}

void sensorErrors() {
  Scenario s("sensor_errors", 0, NO_ANALOG_PIN, false);
  s.run(3 * HOUR_MS, [](Scenario &sc, uint64_t elapsed_ms) {
    sc.in.temp_ok = elapsed_ms >= HOUR_MS;
    sc.in.vbat_ok = elapsed_ms < 2 * HOUR_MS;
  });
  checkFrames(s, 15);
}

void sendGate() {
  Scenario s("send_gate", WRAP_MS - 5 * MINUTE_MS, NO_ANALOG_PIN, false);
  check(s.sensor().uplinkAllowed(millis()), s.name(), "gate closed before the first uplink");
  s.run(SECOND_MS);
  const uint32_t sent_ms = (uint32_t)s.modem().uplinks.at(0).at_ms;
  check(!s.sensor().uplinkAllowed(sent_ms + 1), s.name(), "gate open 1 ms after an uplink");
  check(!s.sensor().uplinkAllowed(sent_ms + MIN_INTERVAL_MS - 1), s.name(), "gate open 1 ms early across the wrap");
  check(s.sensor().uplinkAllowed(sent_ms + MIN_INTERVAL_MS), s.name(), "gate closed at the minimum interval");
  check(s.sensor().uplinkAllowed(sent_ms + 3 * MIN_INTERVAL_MS), s.name(), "gate closed long after");

  DownlinkCommand too_fast = {-1, 1};
  s.sensor().applyDownlink(too_fast);
  check(s.sensor().intervalS() == MIN_INTERVAL_S, s.name(), "interval of 1 s accepted");
  s.run(HOUR_MS);
  checkFrames(s, 5);
}

}  // namespace

int main() {
  unitChecks();
  normalReadings();
  negativeTemperatures();
  millisOverflow();
  budgetOverTwoDays();
  downlinkInterval();
  downlinkIntervalClamped();
  downlinkIgnored();
  demoToggle();
  demoAtBoot();
  failedSend();
  sensorErrors();
  sendGate();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
