import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as D from "./defaults.ts";
import { EXPECTED_DEFAULTS } from "./expected-defaults.fixture.ts";
import { ConfigError, defaultConfig, describeConfig, helpText, loadConfig, redactUrl } from "./load.ts";
import { SCHEMA, checkValue, type KeySpec } from "./schema.ts";
import { tomlErrorLine } from "./toml-line.ts";

const EXAMPLE = join(import.meta.dir, "../../config/owsla.example.toml");
const dir = mkdtempSync(join(tmpdir(), "owsla-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function toml(text: string): string {
  const path = join(dir, `c${files++}.toml`);
  writeFileSync(path, text);
  return path;
}

/** The message of the ConfigError thrown by `fn`. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("defaults", () => {
  test("without a file, flags or environment the embedded defaults are returned", () => {
    const r = loadConfig([], {});
    expect(r.config).toEqual(EXPECTED_DEFAULTS);
    expect(r.help).toBe(false);
    expect(r.positionals).toEqual([]);
    expect(defaultConfig()).toEqual(EXPECTED_DEFAULTS);
  });

  test("gateway id defaults to the sanitised hostname", () => {
    expect(D.sanitizeGatewayId("gw-01.site.example")).toBe("gw-01-site-example");
    expect(D.sanitizeGatewayId("x".repeat(80))).toBe("x".repeat(64));
    expect(D.sanitizeGatewayId("")).toBe(D.FALLBACK_GATEWAY_ID);
    expect(loadConfig([], {}).config.gateway.id).toMatch(D.GATEWAY_ID_PATTERN);
  });

  test("variables without the OWSLA_ prefix, the workers' internal ones and OWSLA_TEST_* are not settings and not errors", () => {
    const env = { HOME: "/root", OWSLA_WORKER_ID: "1", OWSLA_WORKERS_TOTAL: "2", OWSLA_TEST_BINARY: "x" };
    expect(loadConfig([], env).config).toEqual(EXPECTED_DEFAULTS);
  });

  test("an unknown OWSLA_* variable is reported like an unknown flag, with the closest name", () => {
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_PROT: "7071" }))).toBe(
      "Invalid config: unknown environment variable OWSLA_DEVICE_PROT (did you mean OWSLA_DEVICE_PORT?); run with --help to list the variables, or unset it",
    );
    expect(configError(() => loadConfig([], { OWSLA_WORKER_INDEX: "3" }))).toStartWith("Invalid config: unknown environment variable OWSLA_WORKER_INDEX");
    expect(configError(() => loadConfig([], { OWSLA_XYZZY_PLUGH_QUUX: "1" }))).toBe(
      "Invalid config: unknown environment variable OWSLA_XYZZY_PLUGH_QUUX; run with --help to list the variables, or unset it",
    );
  });
});

describe("example file", () => {
  test("example file loads to exactly the defaults", () => {
    expect(loadConfig(["--config", EXAMPLE], {}).config).toEqual(EXPECTED_DEFAULTS);
  });

  test("example file shows every key under its section", () => {
    const text = readFileSync(EXAMPLE, "utf8");
    for (const spec of SCHEMA) {
      const section = text.slice(text.indexOf(`[${spec.section}]`));
      expect(section).toMatch(new RegExp(`^(# )?${spec.key} = `, "m"));
    }
  });
});

describe("precedence", () => {
  const file = toml(`[device]\nport = 7100\nhost = "10.0.0.1"\n[log]\nlevel = "debug"\n`);

  test("OWSLA_CONFIG names the file", () => {
    const c = loadConfig([], { OWSLA_CONFIG: file }).config;
    expect(c.device.port).toBe(7100);
    expect(c.device.host).toBe("10.0.0.1");
    expect(c.log.level).toBe("debug");
    expect(c.device.max_frame_bytes).toBe(65536);
  });

  test("--config overrides OWSLA_CONFIG, and an empty --config reads no file", () => {
    expect(loadConfig(["--config", file], { OWSLA_CONFIG: "/nonexistent.toml" }).config.device.port).toBe(7100);
    expect(loadConfig(["--config="], { OWSLA_CONFIG: file }).config.device.port).toBe(7070);
  });

  test("environment overrides the file", () => {
    const c = loadConfig(["--config", file], { OWSLA_DEVICE_PORT: "7200" }).config;
    expect(c.device.port).toBe(7200);
    expect(c.device.host).toBe("10.0.0.1");
  });

  test("flag overrides the environment", () => {
    const env = { OWSLA_CONFIG: file, OWSLA_DEVICE_PORT: "7200", OWSLA_LOG_LEVEL: "warn" };
    const c = loadConfig(["--device-port", "7300", "--log-level=error"], env).config;
    expect(c.device.port).toBe(7300);
    expect(c.log.level).toBe("error");
  });

  test("short aliases set their keys", () => {
    const args = ["--port", "1", "--data", "/var/lib/owsla", "--workers", "4"];
    args.push("--broker", "amqps://u:p@mq:5671/v", "--gateway", "gw-7");
    const c = loadConfig(args, {}).config;
    expect(c.device.port).toBe(1);
    expect(c.store.dir).toBe("/var/lib/owsla");
    expect(c.workers.count).toBe(4);
    expect(c.broker.url).toBe("amqps://u:p@mq:5671/v");
    expect(c.gateway.id).toBe("gw-7");
  });

  test("the last of a flag and its alias wins", () => {
    expect(loadConfig(["--port", "1", "--device-port", "2"], {}).config.device.port).toBe(2);
    expect(loadConfig(["--device-port", "2", "--port", "1"], {}).config.device.port).toBe(1);
  });

  test("number keys accept fractions", () => {
    const c = loadConfig(["--device-accept-rate-per-ip", "0.5"], { OWSLA_DEVICE_ACCEPT_RATE_TOTAL: "1e3" }).config;
    expect(c.device.accept_rate_per_ip).toBe(0.5);
    expect(c.device.accept_rate_total).toBe(1000);
  });

  test("positionals are returned in order", () => {
    expect(loadConfig(["run", "--port", "1", "extra", "--", "--port"], {}).positionals).toEqual(["run", "extra", "--port"]);
  });

  test("--help returns the defaults without reading file or environment", () => {
    for (const flag of ["-h", "--help"]) {
      const r = loadConfig([flag], { OWSLA_CONFIG: "/nonexistent.toml", OWSLA_DEVICE_PORT: "abc" });
      expect(r.help).toBe(true);
      expect(r.config.device.port).toBe(7070);
    }
  });
});

describe("invalid values", () => {
  test("a non-integer from the environment names the key, variable and expectation", () => {
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_PORT: "abc" }))).toBe(
      'Invalid config: device.port = "abc" (from OWSLA_DEVICE_PORT) must be an integer between 0 and 65535',
    );
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_PORT: "70.5" }))).toContain("must be an integer");
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_PORT: "" }))).toContain('device.port = ""');
  });

  test("an out-of-range integer from a flag names the flag as typed", () => {
    expect(configError(() => loadConfig(["--port", "70000"], {}))).toBe(
      'Invalid config: device.port = "70000" (from --port) must be an integer between 0 and 65535',
    );
    expect(configError(() => loadConfig(["--device-max-frame-bytes=63"], {}))).toContain(
      "device.max_frame_bytes = \"63\" (from --device-max-frame-bytes) must be an integer between 64 and",
    );
  });

  test("a value of the wrong TOML type names the key and the file", () => {
    const path = toml(`[device]\nport = "7070"\n`);
    expect(configError(() => loadConfig(["--config", path], {}))).toBe(
      `Invalid config: device.port = "7070" (from ${path}) must be an integer between 0 and 65535`,
    );
    const frac = toml(`[workers]\ncount = 1.5\n`);
    expect(configError(() => loadConfig(["--config", frac], {}))).toContain(`workers.count = 1.5 (from ${frac})`);
  });

  test("an invalid file value is an error even when a later source overrides it", () => {
    const path = toml(`[device]\nport = -1\n`);
    expect(configError(() => loadConfig(["--config", path, "--port", "1"], {}))).toContain("device.port = -1");
  });

  test("an unknown enum value lists the allowed values", () => {
    expect(configError(() => loadConfig(["--log-level", "verbose"], {}))).toBe(
      'Invalid config: log.level = "verbose" (from --log-level) must be one of "debug", "info", "warn", "error"',
    );
    expect(configError(() => loadConfig([], { OWSLA_AUTH_MODE: "TOKEN" }))).toContain(
      'auth.mode = "TOKEN" (from OWSLA_AUTH_MODE) must be one of "token", "cert", "none"',
    );
  });

  test("a string failing its pattern says what is expected", () => {
    expect(configError(() => loadConfig(["--gateway", "gw 1"], {}))).toBe(
      'Invalid config: gateway.id = "gw 1" (from --gateway) must be 1 to 64 characters from A-Z, a-z, 0-9, _ and -',
    );
    expect(configError(() => loadConfig([], { OWSLA_GATEWAY_SITE_NAMESPACE: "nope" }))).toContain("must be a UUID");
    expect(configError(() => loadConfig(["--data="], {}))).toContain("store.dir");
  });

  test("a non-number for a number key is rejected", () => {
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_ACCEPT_RATE_TOTAL: "fast" }))).toContain(
      "must be a number between 0 and",
    );
  });

  test("secrets are hidden in error messages", () => {
    const url = configError(() => loadConfig(["--broker", "http://u:hunter2@mq"], {}));
    expect(url).toContain('broker.url = "http://u:***@mq" (from --broker) must be an amqp:// or amqps:// URL');
    expect(url).not.toContain("hunter2");
    const token = configError(() => loadConfig([], { OWSLA_API_TOKEN: "short secret" }));
    expect(token).toContain("api.token = \"***\" (from OWSLA_API_TOKEN) must be empty or at least 16");
    expect(token).not.toContain("short secret");
  });

  test("broker.url takes a TOML list, or URLs separated by commas in the environment and flags", () => {
    const path = toml('[broker]\nurl = ["amqp://u:p1@mq-1:5672", "amqp://u:p2@mq-2:5673/v"]\n');
    expect(loadConfig(["--config", path], {}).config.broker.url).toBe("amqp://u:p1@mq-1:5672,amqp://u:p2@mq-2:5673/v");
    const env = loadConfig([], { OWSLA_BROKER_URL: "amqp://a:b@mq-1, amqps://a:b@mq-2" }).config.broker.url;
    expect(env).toBe("amqp://a:b@mq-1,amqps://a:b@mq-2");
    const flag = loadConfig(["--broker", "amqp://a:b@mq-1,amqp://a:b@mq-2"], {}).config.broker.url;
    expect(flag).toBe("amqp://a:b@mq-1,amqp://a:b@mq-2");
    // A comma that does not start a new amqp:// URL belongs to the URL (here, its password).
    expect(loadConfig(["--broker", "amqp://a:x,y@mq-1"], {}).config.broker.url).toBe("amqp://a:x,y@mq-1");
  });

  test("a bad item in a broker URL list is named with every password hidden", () => {
    const path = toml('[broker]\nurl = ["amqp://u:hunter2@mq-1", "http://u:swordfish@mq-2"]\n');
    const msg = configError(() => loadConfig(["--config", path], {}));
    expect(msg).toContain("broker.url");
    expect(msg).toContain("must be an amqp:// or amqps:// URL");
    expect(msg).not.toContain("hunter2");
    expect(msg).not.toContain("swordfish");
    const flag = configError(() => loadConfig(["--broker", "amqp://u:hunter2@mq-1,http://u:swordfish@mq-2"], {}));
    expect(flag).not.toContain("hunter2");
    expect(configError(() => loadConfig([], { OWSLA_BROKER_URL: " , " }))).toContain("broker.url");
    expect(describeConfig(loadConfig(["--broker", "amqp://u:hunter2@mq-1,amqp://u:swordfish@mq-2"], {}).config).broker).toMatchObject({
      url: "amqp://u:***@mq-1,amqp://u:***@mq-2",
    });
  });

  test("broker TLS keys are checked together: external login needs a client certificate and amqps:// URLs", () => {
    expect(configError(() => loadConfig(["--broker-tls-cert", "/c.pem"], {}))).toContain("must be set together");
    expect(configError(() => loadConfig(["--broker-login", "external"], {}))).toContain("needs broker.tls_cert and broker.tls_key");
    const mixed = configError(() =>
      loadConfig(["--broker-login", "external", "--broker-tls-cert", "/c.pem", "--broker-tls-key", "/k.pem", "--broker", "amqps://mq-1,amqp://u:hunter2@mq-2"], {}),
    );
    expect(mixed).toContain('needs amqps:// URLs, but broker.url (from --broker) has "amqp://u:***@mq-2"');
    const ok = loadConfig(["--broker-login", "external", "--broker-tls-cert", "/c.pem", "--broker-tls-key", "/k.pem", "--broker", "amqps://mq-1"], {});
    expect(ok.config.broker.login).toBe("external");
    expect(configError(() => loadConfig(["--broker-queue-type", "mirrored"], {}))).toContain('one of "quorum", "classic"');
  });

  test("related keys are checked against each other", () => {
    expect(configError(() => loadConfig(["--broker-reconnect-min-ms", "20000"], {}))).toBe(
      "Invalid config: broker.reconnect_min_ms = 20000 (from --broker-reconnect-min-ms) " +
        "must not exceed broker.reconnect_max_ms = 10000 (default)",
    );
    expect(configError(() => loadConfig([], { OWSLA_WORKERS_HANG_TIMEOUT_MS: "1000" }))).toContain(
      "workers.hang_timeout_ms = 1000 (from OWSLA_WORKERS_HANG_TIMEOUT_MS) must be greater than workers.heartbeat_ms",
    );
  });
});

describe("unknown names and bad files", () => {
  test("an unknown flag is an error", () => {
    expect(configError(() => loadConfig(["--device-prot", "1"], {}))).toBe(
      "Invalid config: unknown flag --device-prot; run with --help to list the flags",
    );
    expect(configError(() => loadConfig(["-x"], {}))).toContain("unknown flag -x");
  });

  test("a flag without its value is an error", () => {
    expect(configError(() => loadConfig(["--port"], {}))).toContain("flag --port needs a value");
    expect(configError(() => loadConfig(["--help=yes"], {}))).toContain("flag --help takes no value");
  });

  test("an unknown TOML key names the file and the known keys", () => {
    const path = toml(`[device]\nprot = 1\n`);
    const msg = configError(() => loadConfig(["--config", path], {}));
    expect(msg).toStartWith(`Invalid config: unknown key device.prot in ${path}; keys in [device] are host, port,`);
  });

  test("an unknown TOML section or top-level key is an error", () => {
    const section = toml(`[devices]\nport = 1\n`);
    expect(configError(() => loadConfig(["--config", section], {}))).toStartWith(
      `Invalid config: unknown section [devices] in ${section}; sections are gateway, device,`,
    );
    const top = toml(`port = 1\n`);
    expect(configError(() => loadConfig(["--config", top], {}))).toContain("unknown key port outside any section");
    const nested = toml(`[device.tls]\ncert = "x"\n`);
    expect(configError(() => loadConfig(["--config", nested], {}))).toContain("unknown key device.tls");
  });

  test("an unreadable file names the path and where it came from", () => {
    const path = join(dir, "missing.toml");
    expect(configError(() => loadConfig([], { OWSLA_CONFIG: path }))).toStartWith(
      `Invalid config: cannot read config file ${path} (from OWSLA_CONFIG): `,
    );
    expect(configError(() => loadConfig(["--config", dir], {}))).toContain(`cannot read config file ${dir} (from --config)`);
  });

  test("an unparsable file names the path, the line and the parse error", () => {
    const path = toml(`[device]\nport = = 1\n`);
    expect(configError(() => loadConfig(["--config", path], {}))).toBe(
      `Invalid config: cannot parse config file ${path} (from --config) at line 2 ("port = = 1"): Expected a value but found '='`,
    );
  });

  test("the parse error's line is found after multi-line arrays, comments and blank lines", () => {
    expect(tomlErrorLine(`# c\n[a]\nx = [\n  1,\n  2,\n]\n\ny = "ok"\nz = "open\nw = 1\n`)).toBe(9);
    expect(tomlErrorLine(`[a]\nx = 1\n[a]\nx = 2\n`)).toBe(3);
    expect(tomlErrorLine(`[a]\nx = 1\n`)).toBe(null);
  });

  test("auth.mode cert needs a client CA, and a CRL needs one too", () => {
    expect(configError(() => loadConfig(["--auth-mode", "cert"], {}))).toStartWith(
      'Invalid config: auth.mode = "cert" (from --auth-mode) needs device.tls_client_ca',
    );
    expect(configError(() => loadConfig([], { OWSLA_DEVICE_TLS_CRL: "/x.pem" }))).toStartWith(
      "Invalid config: device.tls_crl (from OWSLA_DEVICE_TLS_CRL) needs device.tls_client_ca",
    );
    const c = loadConfig(["--auth-mode", "cert", "--device-tls-client-ca", "/ca.pem", "--device-tls-min-version", "1.3"], {}).config;
    expect(c.auth.mode).toBe("cert");
    expect(c.device.tls_min_version).toBe("1.3");
  });
});

describe("value parsing", () => {
  const flag: KeySpec = {
    section: "log",
    key: "flag",
    name: "log.flag",
    env: "OWSLA_LOG_FLAG",
    flag: "log-flag",
    type: "bool",
    default: false,
    doc: "A test flag.",
  };

  test("bool text accepts true, false, 1 and 0 only", () => {
    expect(checkValue(flag, "true", true)).toEqual({ ok: true, value: true });
    expect(checkValue(flag, "1", true)).toEqual({ ok: true, value: true });
    expect(checkValue(flag, "false", true)).toEqual({ ok: true, value: false });
    expect(checkValue(flag, "0", true)).toEqual({ ok: true, value: false });
    expect(checkValue(flag, "yes", true)).toEqual({ ok: false, expected: "true, false, 1 or 0" });
    expect(checkValue(flag, "", true).ok).toBe(false);
  });

  test("bool in TOML must be a boolean", () => {
    expect(checkValue(flag, true, false)).toEqual({ ok: true, value: true });
    expect(checkValue(flag, "true", false)).toEqual({ ok: false, expected: "true or false" });
    expect(checkValue(flag, 1, false).ok).toBe(false);
  });
});

describe("help and redaction", () => {
  test("help text mentions every flag, alias, environment variable and doc line", () => {
    const text = helpText("owsla run");
    expect(text).toStartWith("Usage: owsla run [options]\n");
    for (const want of ["-h, --help", "--config <path>", "OWSLA_CONFIG"]) expect(text).toContain(want);
    for (const spec of SCHEMA) {
      expect(text).toContain(`--${spec.flag} `);
      expect(text).toContain(spec.env);
      expect(text).toContain(spec.doc);
      if (spec.alias) expect(text).toContain(`--${spec.alias}`);
    }
    expect(text).toContain("env OWSLA_DEVICE_PORT; TOML [device] port; default 7070; an integer between 0 and 65535");
  });

  test("redactUrl hides the password and keeps the rest", () => {
    expect(redactUrl("amqp://guest:guest@127.0.0.1:5672")).toBe("amqp://guest:***@127.0.0.1:5672");
    expect(redactUrl("amqps://u:p%40ss@mq.example:5671/vhost")).toBe("amqps://u:***@mq.example:5671/vhost");
    expect(redactUrl("amqp://u:p@ss:w@host/v")).toBe("amqp://u:***@host/v");
    expect(redactUrl("amqp://:secret@host")).toBe("amqp://:***@host");
    expect(redactUrl("amqp://user@host:5672")).toBe("amqp://user@host:5672");
    expect(redactUrl("amqp://host:5672")).toBe("amqp://host:5672");
  });

  test("describeConfig hides the broker password and the API token", () => {
    const c = loadConfig(["--broker", "amqp://u:hunter2@mq"], { OWSLA_API_TOKEN: "0123456789abcdef0123" }).config;
    const d = describeConfig(c);
    const text = JSON.stringify(d);
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("0123456789abcdef");
    expect(d.broker).toMatchObject({ url: "amqp://u:***@mq", prefetch: 500 });
    expect(d.api).toMatchObject({ token: "***", port: 8080 });
    expect(describeConfig(defaultConfig()).api).toMatchObject({ token: "" });
  });
});
