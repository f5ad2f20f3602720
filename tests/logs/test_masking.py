"""Variable masking: each kind of variable becomes <*>, constant text stays."""

from __future__ import annotations

import pytest

from tools.logs.mining import Masker, mask, mask_token


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # numbers, signed, decimal
        ("retry 3 of 10", "retry <*> of <*>"),
        ("offset -42 delta +7 ratio 0.25", "offset <*> delta <*> ratio <*>"),
        # hex, with and without digits
        ("dear 00b360e8 at 0x7ffe12ab", "dear <*> at <*>"),
        ("mask ffffffff set", "mask <*> set"),
        # IPv4, with port, lists of them, and a leading slash
        ("from 10.0.0.1:8080 to 192.168.1.20", "from <*> to <*>"),
        ("10.11.21.122,10.11.10.1 GET", "<*> GET"),
        ("Received connection request /10.10.34.11:45307", "Received connection request <*>"),
        # IPv6, with port
        ("peer fe80::1ff:fe23:4567:890a up", "peer <*> up"),
        ("peer [2001:db8::1]:443 up", "peer [<*> up"),
        ("peer dead::beef up", "peer <*> up"),
        # UUIDs
        (
            "[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Terminating",
            "[instance: <*>] Terminating",
        ),
        # paths and URLs
        ("open /var/log/syslog failed", "open <*> failed"),
        ("run ./bin/start.sh and ../x", "run <*> and <*>"),
        ("LOGIN chdir /p/gb2/glosli/8M_5000K/t800 failed", "LOGIN chdir <*> failed"),
        ("GET https://example.com/a/b?x=1&y=2 done", "GET <*> done"),
        ('"GET /v2/servers/detail?all_tenants=True HTTP/1.1" status: 200', '"GET <*>" status: <*>'),
        # durations and sizes, glued to their unit or not
        ("took 12ms then 3.5s", "took <*> then <*>"),
        ("read 5.1 MiB/s, wrote 393 KiB/s at 1.4k op/s", "read <*>, wrote <*> at <*>"),
        ("SRV _sip._tls.corp.example.com ok", "SRV <*> ok"),
        # one slash between identifiers with a dot or hyphen; not units or components
        ("push to acme/payments-api and wpad.example.com/A", "push to <*> and <*>"),
        ("5 MiB/s read/write sched/backfill: TCP/IP", "<*> read/write sched/backfill: TCP/IP"),
        ("took 19.05 seconds to spawn", "took <*> to spawn"),
        ("estimated size 5.2 KB, free 317.1 MB)", "estimated size <*>, free <*>)"),
        ("wrote 1024 bytes in 64MB blocks", "wrote <*> in <*> blocks"),
        # dates and times inside messages
        ("at 2024-01-02T03:04:05.123Z retry", "at <*> retry"),
        ("changed: Thu Aug 04 15:29:45 PDT 2005", "changed: <*>"),
        ("built on 06/10/2013 17:26 GMT", "built on <*>"),
        # block ids and other ids with digits
        ("block blk_-6952295868487656571 of blk_38865049064139660", "block <*> of <*>"),
        ("attempt_1445144423722_0020_m_000000_0 done on node-128", "<*> done on <*>"),
        # key=value values (and key: values with digits); quoted values are messages
        ("user=bob status=200 (HWID=1973)", "user=<*> status=<*> (HWID=<*>)"),
        ("lr:00004ed0 cr:28244842", "lr:<*> cr:<*>"),
        ('level=info msg="connection refused"', 'level=<*> msg="connection refused"'),
        # host names, packages and classes
        ("Opening proxy : MSRA-SA-41.fareast.corp.microsoft.com:7109", "Opening proxy : <*>"),
        ("Registering class org.apache.hadoop.mapreduce.v2.app.Foo", "Registering class <*>"),
        ("attempt to connect to api-gw.internal failed", "attempt to connect to <*> failed"),
        ("pypi.org:443 open through proxy", "<*> open through proxy"),
        ("Email delivery failed to omar.tanaka@gmail.com:", "Email delivery failed to <*>:"),
        # MAC addresses
        ("DHCPDISCOVER from 00:11:43:e3:ba:c3 via eth1", "DHCPDISCOVER from <*> via <*>"),
        # lists of values of any length fold into one mask
        ("(IRQs 3 4 5 6 7 10 11 12) *14", "(IRQs <*>) <*>"),
        ("Fan speeds ( 3552 3534 3375 **** 3515 3479 )", "Fan speeds ( <*> **** <*> )"),
        # brackets and punctuation around a variable are kept; a token with a digit is
        # masked whole, so `LOCAL(0),` and `10.0.0.1,` give the same template
        ("synchronized to LOCAL(0), stratum 10", "synchronized to <*>, stratum <*>"),
        ("synchronized to 10.100.20.250, stratum 3", "synchronized to <*>, stratum <*>"),
        ("(dcr 0x02f0) detected", "(dcr <*>) detected"),
    ],
)
def test_each_kind_of_variable_is_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Connection refused by peer",
        "VM Paused (Lifecycle Event)",
        "Transitioned from RUNNING to FAILED",
        "n.leader elected; data TLB error interrupt",
        "ciod: failed to read message prefix on control stream",
        "Executing with tokens:",
        "autopurge.snapRetainCount set to",  # a setting's name, not a host
    ],
)
def test_constant_text_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_whitespace_is_normalised() -> None:
    assert mask("  a \t b   42  ") == "a b <*>"
    assert mask("") == ""


def test_token_masking_keeps_what_encloses_the_value() -> None:
    assert mask_token("(HWID=1973),") == "(HWID=<*>),"
    assert mask_token("'/etc/hosts'") == "'<*>'"
    assert mask_token("[line=15]") == "[line=<*>]"
    assert mask_token("word,") == "word,"
    # a value in brackets of its own keeps them: one form for every value of the key
    assert mask_token("(cipher=(none),") == mask_token("(cipher=AES128-SHA,") == "(cipher=<*>,"


def test_the_token_cache_is_bounded_and_does_not_change_results() -> None:
    masker = Masker(cache_size=3)
    lines = [f"request {i} from host-{i} took {i}ms ok" for i in range(50)]
    assert [masker.mask(line) for line in lines] == [mask(line) for line in lines]
    assert len(masker._cache) <= 3


def test_the_values_of_a_key_value_list_are_masked_words_too() -> None:
    listed = (
        "Plan: Package: KB1, current: Absent, pending: Default, start: Install Pending, "
        "limit: Absent"
    )
    assert mask(listed) == (
        "Plan: Package: <*>, current: <*>, pending: <*>, start: <*>, limit: <*>"
    )
    assert mask("Apply: detect, Disposition = Staged, Kind: EQ, Build: GE, Rank: LT") == (
        "Apply: detect, Disposition = <*>, Kind: <*>, Build: <*>, Rank: <*>"
    )
    few = "Server api is DOWN, reason: Connection timeout, check duration: 2001ms."
    assert mask(few) == "Server api is DOWN, reason: Connection timeout, check duration: <*>."
    assert Masker(listed=None).mask(listed).endswith("limit: Absent")
