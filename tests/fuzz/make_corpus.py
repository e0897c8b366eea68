#!/usr/bin/env python3
"""Writes the seed corpora for fuzz_open and fuzz_update.

OPEN seeds are message bodies; UPDATE seeds are one context byte (see fuzz_update.cpp: 0
means 4-octet AS, iBGP, no add-path, all families) followed by the body. Captured seeds
come from GoBGP 3.10 and FRR 8.4 peering over a veth (see tests/unit/bgp_codec_test.cpp);
the CVE seeds reproduce the shapes of the inputs behind FRR's CVE-2022-40302,
CVE-2023-38802, CVE-2023-46752 and CVE-2023-46753.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def attr(flags, typ, value):
    if flags & 0x10:
        return bytes([flags, typ]) + struct.pack('>H', len(value)) + value
    return bytes([flags, typ, len(value)]) + value


def update(withdrawn=b'', attrs=b'', nlri=b''):
    return struct.pack('>H', len(withdrawn)) + withdrawn + struct.pack('>H', len(attrs)) + attrs + nlri


ORIGIN = attr(0x40, 1, b'\x00')
AS_PATH = attr(0x40, 2, bytes.fromhex('02010000fde9'))
NEXT_HOP = attr(0x40, 3, bytes.fromhex('0a000001'))
BASE = ORIGIN + AS_PATH + NEXT_HOP
NLRI = bytes.fromhex('18c00002')
EXT_EVPN = attr(0xc0, 16, bytes.fromhex('0002fde90000000a030c000000000008'))
TYPE2 = bytes.fromhex('0225' '00010a000001000a' '00' * 10 + '00000000' '30' '001122334455' '20' '0a010105' '00000a' '000064')
TYPE3 = bytes.fromhex('0311' '00010a000001000a' '00000000' '20' '0a000001')
TYPE5 = bytes.fromhex('0522' '0000fde900000064' + '00' * 10 + '00000000' '18' '0a140000' '00000000' '000064')
PMSI = attr(0xc0, 22, bytes.fromhex('000600000a0a000001'))


def mp_reach(afi, safi, nh, nlri, flags=0x90):
    return attr(flags, 14, struct.pack('>HBB', afi, safi, len(nh)) + nh + b'\x00' + nlri)


def mp_unreach(afi, safi, nlri):
    return attr(0x90, 15, struct.pack('>HB', afi, safi) + nlri)


CAPTURED = {
    'gobgp_ipv4': '02000000224001010240020602010000fde94003040a6300018004040000000ac00804fde9006418cb0071',
    'gobgp_ipv6': '020000002c4001010240020602010000fde9800e1c0002011000000000000000000000ffff0a630001003020010db80002',
    'gobgp_evpn_type2': '02000000564001010240020602010000fde9800e33001946040a63000100022800010a630001000a000000000000000000000000000030001122334455200a01010500000a000064c010100002fde90000000a030c000000000008',
    'gobgp_evpn_type3': '020000004b4001010240020602010000fde9800e1c001946040a63000100031100010a630001000a00000000200a630001c010100002fde90000000a030c000000000008c01609000600000a0a630001',
    'gobgp_evpn_type5': '02000000584001010240020602010000fde9800e2d001946040a6300010005220000fde9000000640000000000000000000000000000180a14000000000000000064c010180002fde900000064030c0000000000080603001122334466',
    'frr_ipv4': '020000001c400101005002000602010000fdea4003040a6300028004040000000018c0000219c6336480',
    'frr_ipv6_linklocal': '0200000045900e002c0002012020010db8009900000000000000000002fe80000000000000f84ab8fffea4b704003020010db80001400101005002000602010000fdea80040400000000',
    'frr_evpn_type2': '0200000051900e002c001946040aff000200022100010a630002000200000000000000000000000000003000aabbccdd010000000a400101005002000602010000fdeac01010030c0000000000080002fdea0000000a',
    'frr_evpn_type3': '020000004d900e001c001946040aff000200031100010a630002000200000000200aff0002400101005002000602010000fdeac01010030c0000000000080002fdea0000000ac01609000600000a0aff0002',
}

UPDATES = {
    'ipv4_basic': update(attrs=BASE, nlri=NLRI),
    'ipv4_withdraw': update(withdrawn=NLRI),
    'eor_ipv4': update(),
    'eor_evpn': update(attrs=attr(0x80, 15, bytes.fromhex('001946'))),
    'evpn_all_types': update(attrs=ORIGIN + AS_PATH + EXT_EVPN + PMSI + mp_reach(25, 70, bytes.fromhex('0a000001'), TYPE2 + TYPE3 + TYPE5 + bytes.fromhex('0119' + '00' * 25) + bytes.fromhex('0417' + '00' * 23))),
    'as4_two_octet_peer': b'\x01' + update(attrs=ORIGIN + attr(0x40, 2, bytes.fromhex('0203fde95ba05ba0')) + NEXT_HOP + attr(0xc0, 7, bytes.fromhex('5ba00a000001')) + attr(0xc0, 17, bytes.fromhex('0202fa56ea01fa56ea02')) + attr(0xc0, 18, bytes.fromhex('fa56ea010a000001')), nlri=NLRI),
    'addpath_ipv4': b'\x04' + update(withdrawn=bytes.fromhex('0000000718c63364'), attrs=BASE, nlri=bytes.fromhex('0000000118c00002')),
    'communities_all': update(attrs=BASE + attr(0xc0, 8, bytes.fromhex('fde90064')) + attr(0xc0, 32, bytes.fromhex('fa56ea010000000100000002')) + EXT_EVPN + attr(0x80, 9, bytes.fromhex('0a000005')) + attr(0x80, 10, bytes.fromhex('0a000006')) + attr(0xe0, 200, b'\x01\x02'), nlri=NLRI),
    'tunnel_encap_valid': update(attrs=BASE + attr(0xc0, 23, bytes.fromhex('00080010' '08021234' '060a000000000001' '0a000001')), nlri=NLRI),
    # CVE-2023-38802: tunnel encapsulation sub-TLV lengths that overrun or disagree.
    'cve_2023_38802_subtlv_overrun': update(attrs=BASE + attr(0xc0, 23, bytes.fromhex('00080004' '0805123400')), nlri=NLRI),
    'cve_2023_38802_long_subtlv_cut': update(attrs=BASE + attr(0xc0, 23, bytes.fromhex('00080003' '800010')), nlri=NLRI),
    'cve_2023_38802_tlv_overrun': update(attrs=BASE + attr(0xc0, 23, bytes.fromhex('0008000a' '08021234')), nlri=NLRI),
    'cve_2023_38802_endpoint_afi': update(attrs=BASE + attr(0xc0, 23, bytes.fromhex('0008000c' '060a000000000002' '0a000001')), nlri=NLRI),
    # CVE-2023-46752: malformed MP_REACH_NLRI (next-hop length, NLRI overruns, truncation).
    'cve_2023_46752_nh_len': update(attrs=ORIGIN + AS_PATH + mp_reach(25, 70, bytes.fromhex('0a0000'), TYPE3)),
    'cve_2023_46752_nlri_overrun': update(attrs=ORIGIN + AS_PATH + mp_reach(25, 70, bytes.fromhex('0a000001'), bytes.fromhex('03ff0000'))),
    'cve_2023_46752_prefix_len': update(attrs=ORIGIN + AS_PATH + mp_reach(2, 1, bytes.fromhex('20010db8000000000000000000000001'), bytes.fromhex('8120010db8'))),
    'cve_2023_46752_too_short': update(attrs=ORIGIN + AS_PATH + attr(0x80, 14, b'\x00\x02'), nlri=NLRI),
    'cve_2023_46752_no_reserved': update(attrs=ORIGIN + AS_PATH + attr(0x80, 14, bytes.fromhex('001946040a000001'))),
    # CVE-2023-46753: routes without the mandatory attributes.
    'cve_2023_46753_evpn_no_attrs': update(attrs=mp_reach(25, 70, bytes.fromhex('0a000001'), TYPE2)),
    'cve_2023_46753_ipv4_no_attrs': update(nlri=NLRI),
    'cve_2023_46753_unreach_and_empty_reach': update(attrs=mp_unreach(25, 70, TYPE3) + mp_reach(25, 70, bytes.fromhex('0a000001'), b'')),
    'duplicate_mp_reach': update(attrs=ORIGIN + AS_PATH + mp_reach(25, 70, bytes.fromhex('0a000001'), TYPE3) * 2),
    'attr_list_overrun': update(attrs=BASE + bytes.fromhex('80040900'), nlri=NLRI),
}

OPENS = {
    'gobgp': '04fde9005a0a63000130022e0200490402766d0001040001000101040002000101040019004641040000fde9050c000100010002001900460002',
    'frr': '04fdea00090a6300026c020601040001000102060104000200010206010400190046020280000202020002024600020641040000fdea02020600020e450c000101010002010100194601020b4909076672722d6361700002044002c07802174715000101800000000002018000000000194680000000',
    'gobgp_graceful_restart': '04fde9005a0a63000140023e0200490402766d0001040001000101040002000101040019004641040000fde9400e005a000101000002010000194600050c000100010002001900460002',
    'frr_graceful_restart': '04fdea00090a63000278020601040001000102060104000200010206010400190046020280000202020002024600020641040000fdea02020600020e450c000101010002010100194601020b4909076672722d636170000210400ec07800010100000201000019460002174715000101800000000002018000000000194680000000',
    'graceful_restart_families': '04fde9005a0a000001' '12' '0210' '400e' 'c078' '00010180' '00194680' '00020100',
    'rfc9072_valid': '04fde9005a0a000001' 'ffff0005' '020002' '0200',
    # CVE-2022-40302: RFC 9072 extended optional parameter lengths that overrun.
    'cve_2022_40302_ext_len_overrun': '04fde9005a0a000001' 'ffff0100' '020006',
    'cve_2022_40302_param_len_overrun': '04fde9005a0a000001' 'ffff0005' '02ffff0000',
    'cve_2022_40302_cut_header': '04fde9005a0a000001' 'ffff00',
    'cve_2022_40302_cap_overrun': '04fde9005a0a000001' 'ffff0006' '02000302' '0501',
    'unsupported_param': '04fde9005a0a000001' '0401020000',
    # Found by fuzz_open: extended parameters of length 0 must re-encode as such.
    'regression_empty_extended_params': '04fdd901ffff000502ffff0000',
}


def write(dirname, items):
    path = os.path.join(HERE, 'corpus', dirname)
    os.makedirs(path, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(path, name), 'wb') as f:
            f.write(data)


def main():
    # Captured messages start at the type byte; the context byte 0x02 makes them eBGP.
    updates = {'captured_' + k: b'\x02' + bytes.fromhex(v)[1:] for k, v in CAPTURED.items()}
    for name, body in UPDATES.items():
        updates[name] = body if name in ('as4_two_octet_peer', 'addpath_ipv4') else b'\x00' + body
    write('update', updates)
    write('open', {name: bytes.fromhex(h) for name, h in OPENS.items()})


if __name__ == '__main__':
    main()
