#!/usr/bin/env python3
"""Writes constructed.json: DLMS payloads built by hand from the text of
gbcs-payloads.md (4.1-4.5, 6.2), independently of the Go encoder. Made-up
values; no RTDS content. Run: python3 construct.py > constructed.json"""
import json, struct

def ln(n):  # A-XDR length, minimal
    return bytes([n]) if n < 0x80 else (b'\x81' + bytes([n]) if n < 0x100 else b'\x82' + struct.pack('>H', n))
def os_(b): return b'\x09' + ln(len(b)) + b
def st(*e): return b'\x02' + ln(len(e)) + b''.join(e)
def ar(*e): return b'\x01' + ln(len(e)) + b''.join(e)
def u8(v): return b'\x11' + bytes([v])
def i8(v): return b'\x0f' + struct.pack('>b', v)
def u16(v): return b'\x12' + struct.pack('>H', v)
def i16(v): return b'\x10' + struct.pack('>h', v)
def u32(v): return b'\x06' + struct.pack('>I', v)
def enum(v): return b'\x16' + bytes([v])
def boolean(v): return b'\x03' + bytes([1 if v else 0])
def obis(s):
    a, rest = s.split('-'); b, rest = rest.split(':'); return bytes([int(a), int(b)] + [int(x) for x in rest.split('.')])
def setspec(c, o, a): return b'\x02' + struct.pack('>H', c) + obis(o) + bytes([a])
NOW = bytes.fromhex('0000000000000000008000ff')
INVOKE = 0x20000000 | (0x1a2b3c4d5e & 0xffffff)

# ECS01a: 21 SET specs in the order of the 4.5 table.
specs = [setspec(20, '0-0:13.0.0.255', 7), setspec(20, '0-0:13.0.0.255', 8), setspec(20, '0-0:13.0.0.255', 9),
         setspec(11, '0-1:11.0.0.255', 2)] + [setspec(21, '0-0:16.1.%d.255' % (11 + i), 2) for i in range(8)] + [
    setspec(9000, '0-0:94.44.2.0', 4), setspec(113, '0-0:19.20.4.255', 6), setspec(113, '0-0:19.20.0.255', 6),
    setspec(20, '0-0:13.0.0.255', 10), setspec(9000, '0-0:94.44.128.29', 6), setspec(9000, '0-0:94.44.2.0', 6),
    setspec(113, '0-0:19.20.4.255', 7), setspec(113, '0-0:19.20.0.255', 7), setspec(9000, '0-0:63.1.1.255', 6)]
script = obis('0-0:10.0.100.255')
data = [
    ar(st(os_(b'\x01'), os_(bytes.fromhex('ffff0101ff000000008000ff')), os_(b'\x01'))),
    ar(st(os_(b'\x01'), *[u8(1)] * 5, u8(2), u8(2))),
    ar(st(u8(1), ar(st(os_(bytes.fromhex('00000000')), os_(script), u16(1)),
                    st(os_(bytes.fromhex('07000000')), os_(script), u16(2)))),
       st(u8(2), ar(st(os_(bytes.fromhex('00000000')), os_(script), u16(1))))),
    ar(st(u16(1), os_(bytes.fromhex('ffff0c19ff')), u8(2))),
    ar(u32(1000), u32(2000)), ar(), ar(), ar(), ar(), ar(), ar(), ar(),
    boolean(False),
    st(st(i8(0), i8(-5)), st(u16(3), os_(obis('1-0:1.8.0.255')), i8(2)), ar(st(os_(b'\x01'), i16(5500)))),
    st(st(i8(0), i8(-5)), st(u16(3), os_(obis('1-0:1.8.0.255')), i8(2)),
       ar(st(os_(b'\x01'), i16(1534)), st(os_(b'\x02'), i16(2010)), st(os_(b'\x03'), i16(-12)))),
] + [os_(NOW)] * 6
ecs01a = b'\xd9' + struct.pack('>I', INVOKE) + b'\x00' + ln(21) + b''.join(specs) + ln(21) + b''.join(data)
ecs01a_resp = b'\xda' + struct.pack('>I', INVOKE) + b'\x00\x00' + ln(21) + b'\x00' * 21 + ln(21) + b'\x02\x00' * 21

# ECS68: structure(4){long-unsigned 8F0A, time, protection-parameters, ciphered block}.
esme, supplier = bytes.fromhex('00db0000000000a1'), bytes.fromhex('90b3d51f30010001')
alert_ctr = 0x152
pp = ar(st(enum(2), st(os_(b'\x04' + struct.pack('>Q', alert_ctr)), os_(esme), os_(supplier), os_(b''),
                        st(enum(2), st(os_(b'\x02'), os_(b''))))))
block = bytes.fromhex('3100000000') + bytes(range(40)) + bytes.fromhex('a0a1a2a3a4a5a6a7a8a9aaab')  # not a real ciphertext
t68 = bytes.fromhex('07ea0c06ff000000008000ff')
ecs68 = b'\x0f' + struct.pack('>I', 0x20000000 | alert_ctr) + b'\x00' + st(u16(0x8f0a), os_(t68), pp, os_(block))
# ECS68 plaintext: structure(1){compact-array structure(7){06,06,array(48) of 06, 4 x array(8) of 06}}, one record.
td = b'\x02\x07\x06\x06' + b'\x01\x00\x30\x06' + b'\x01\x00\x08\x06' * 4
rec = struct.pack('>II', 0x32a0ca80, 12345) + b''.join(struct.pack('>I', 100 + i) for i in range(48)) + \
      b''.join(struct.pack('>I', 1000 * k + j) for k in range(4) for j in range(8))
assert len(rec) == 328
ecs68_plain = st(b'\x13' + td + ln(len(rec)) + rec)

# 0x00CC future-dated outcome, failure 8F67, of an ECS01a command activating 113 0-0:19.20.0.255 attr 7.
cmd_ctr = 0x1a2b3c4d5e
fd = struct.pack('>HQH', 0x0019, cmd_ctr, 113) + obis('0-0:19.20.0.255') + b'\x07'
fd_alert = b'\x0f' + struct.pack('>I', 0x20000000 | 0x153) + b'\x00' + st(u16(0x8f67), os_(bytes.fromhex('07ea0c05ff000000008000ff')), os_(fd))

out = {
    'source': 'built by construct.py from the text of gbcs-payloads.md 4.1-4.5 and 6.2, independently of the Go encoder; made-up values, no RTDS content',
    'vectors': [
        {'name': 'ecs01a-request', 'code': 0x0019, 'note': 'ECS01a Set Tariff: the 21 SET specs of the 4.5 table, immediate activation (now)', 'payload': ecs01a.hex()},
        {'name': 'ecs01a-response', 'code': 0x0019, 'note': '21 x null-data and 21 x 02 00', 'payload': ecs01a_resp.hex()},
        {'name': 'ecs68-alert', 'code': 0x0061, 'note': 'ECS68 billing data log alert; the ciphered block is filler, not a real encryption', 'payload': ecs68.hex(), 'plaintext': ecs68_plain.hex()},
        {'name': 'future-dated-failure', 'code': 0x00CC, 'note': '8F67 for ECS01a counter 0x1a2b3c4d5e, class 113 0-0:19.20.0.255 attribute 7', 'payload': fd_alert.hex()},
    ]}
print(json.dumps(out, indent=1))
