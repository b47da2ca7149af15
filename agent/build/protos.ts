/**
 * The protobuf messages the BuildKit session speaks, written from the upstream field numbers (fsutil
 * `types/wire.proto` and `types/stat.proto`, buildkit's control, secrets and auth protos, grpc health).
 * Only the fields the agent reads or writes are declared: protobuf skips unknown fields, so a newer engine
 * that sends more still decodes. Kept as text here (not .proto files) so the bundled agent carries them.
 */
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package bytenite.buildkit;

message Timestamp { int64 seconds = 1; int32 nanos = 2; }

// fsutil types/stat.proto
message Stat {
  string path = 1; uint32 mode = 2; uint32 uid = 3; uint32 gid = 4; int64 size = 5; int64 modTime = 6;
  string linkname = 7; int64 devmajor = 8; int64 devminor = 9; map<string, bytes> xattrs = 10;
}
// fsutil types/wire.proto
message Packet { int32 type = 1; Stat stat = 2; uint32 ID = 3; bytes data = 4; }

// buildkit api/services/control/control.proto (what /build's moby.buildkit.trace carries)
message Vertex {
  string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
  Timestamp started = 5; Timestamp completed = 6; string error = 7;
}
message VertexStatus {
  string ID = 1; string vertex = 2; string name = 3; int64 current = 4; int64 total = 5;
  Timestamp timestamp = 6; Timestamp started = 7; Timestamp completed = 8;
}
message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
message StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2; repeated VertexLog logs = 3; }

// grpc.health.v1
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse { int32 status = 1; }

// buildkit session/secrets/secrets.proto
message GetSecretRequest { string ID = 1; map<string, string> annotations = 2; }
message GetSecretResponse { bytes data = 1; }

// buildkit session/auth/auth.proto
message CredentialsRequest { string Host = 1; }
message CredentialsResponse { string Username = 1; string Secret = 2; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const type = (name: string) => root.lookupType(`bytenite.buildkit.${name}`);

export const PacketType = { STAT: 0, REQ: 1, DATA: 2, FIN: 3, ERR: 4 } as const;

/** Health's `SERVING`. */
export const SERVING = 1;

/** Go's os.FileMode bits that fsutil puts in `Stat.mode` (not st_mode's). */
export const GoMode = { dir: 0x80000000, symlink: 0x8000000, setuid: 0x800000, setgid: 0x400000, sticky: 0x100000 } as const;

export interface Stat {
  path: string;
  mode: number;
  uid?: number;
  gid?: number;
  /** int64: protobufjs gives a Long or number on decode; the agent writes bigint-safe numbers. */
  size?: number | bigint;
  /** Unix nanoseconds. */
  modTime?: bigint | number;
  linkname?: string;
}

export interface Packet {
  type: number;
  stat?: Stat;
  ID?: number;
  data?: Uint8Array;
}

export interface PbTimestamp { seconds?: number | { toNumber(): number }; nanos?: number }
export interface PbVertex { digest?: string; inputs?: string[]; name?: string; cached?: boolean; started?: PbTimestamp; completed?: PbTimestamp; error?: string }
export interface PbVertexStatus { ID?: string; vertex?: string; name?: string; current?: number | { toNumber(): number }; total?: number | { toNumber(): number } }
export interface PbVertexLog { vertex?: string; stream?: number | { toNumber(): number }; msg?: Uint8Array }
export interface StatusResponse { vertexes?: PbVertex[]; statuses?: PbVertexStatus[]; logs?: PbVertexLog[] }

/** A message type the session encodes and decodes, typed by its TS shape. */
export interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Uint8Array): T;
}

function codec<T>(name: string): Codec<T> {
  const t = type(name);
  return {
    encode: (value) => {
      const err = t.verify(value as Record<string, unknown>);
      if (err) throw new Error(`bad ${name}: ${err}`);
      return Buffer.from(t.encode(t.fromObject(value as Record<string, unknown>)).finish());
    },
    decode: (bytes) => t.toObject(t.decode(bytes), { longs: Number, bytes: Buffer, defaults: false, arrays: true }) as T,
  };
}

/** int64 fields are written from bigint as decimal strings (protobufjs takes those for 64-bit values losslessly). */
function stat64(s: Stat): Record<string, unknown> {
  return {
    ...s,
    size: s.size === undefined ? undefined : String(s.size),
    modTime: s.modTime === undefined ? undefined : String(s.modTime),
  };
}

const packetType = type('Packet');
export const PacketCodec: Codec<Packet> = {
  encode: (p) => {
    const obj = { ...p, stat: p.stat ? stat64(p.stat) : undefined };
    return Buffer.from(packetType.encode(packetType.fromObject(obj)).finish());
  },
  decode: (bytes) => packetType.toObject(packetType.decode(bytes), { longs: String, bytes: Buffer, defaults: false }) as Packet,
};

export const StatusResponseCodec = codec<StatusResponse>('StatusResponse');
export const HealthCheckRequestCodec = codec<{ service?: string }>('HealthCheckRequest');
export const HealthCheckResponseCodec = codec<{ status: number }>('HealthCheckResponse');
export const GetSecretRequestCodec = codec<{ ID?: string; annotations?: Record<string, string> }>('GetSecretRequest');
export const GetSecretResponseCodec = codec<{ data: Uint8Array }>('GetSecretResponse');
export const CredentialsRequestCodec = codec<{ Host?: string }>('CredentialsRequest');
export const CredentialsResponseCodec = codec<{ Username?: string; Secret?: string }>('CredentialsResponse');
