"""``destination_restrictions`` with the real daemon: a destination the ISP's map refuses gets the map's text
before any upstream connection, one it redirects goes to the other MTA (the smarthost) with the real client
logged, and what the map permits is relayed as before.
"""

from conftest import Client, free_port
from scanners import harmless_message, send_message


def dest_map(tmp_path, text):
    path = tmp_path / "destinations.cidr"
    path.write_text(text)
    return f"cidr:{path}"


def test_a_refused_destination_gets_the_maps_text_and_no_connection_is_made(proxy, scripted_mta, tmp_path):
    m = scripted_mta()
    spec = dest_map(tmp_path, "127.0.0.0/8 REJECT direct delivery is not allowed, use smtp.isp.example\n")
    p = proxy(m.port, destination_restrictions=f"check_destination_access {spec}, permit")
    c = Client(p.port, source="127.0.0.141")
    r = c.read_reply(timeout=5)
    assert r.text == ("554 5.7.1 Service unavailable; destination [127.0.0.1] rejected: "
                      "direct delivery is not allowed, use smtp.isp.example"), r
    c.wait_closed()
    (rej,) = p.wait_event("reject", reason="destination")
    assert rej.get("code") == "554" and rej.get("rule") == f"destination_restrictions check_destination_access {spec}", rej
    assert m.conns == [], "the MTA was never connected to"


def test_a_redirected_destination_goes_to_the_smarthost(proxy, scripted_mta, mta, tmp_path):
    asked = scripted_mta()
    spec = dest_map(tmp_path, f"127.0.0.1/32 REDIRECT 127.0.0.1:{mta.port}\n")
    p = proxy(asked.port, destination_restrictions=f"check_destination_access {spec}")
    c = Client(p.port, source="127.0.0.142")
    assert c.greeting().code == 220
    assert c.cmd("EHLO pc1.customer.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    (msg,) = mta.wait_messages(1)
    assert asked.conns == [], "the destination the client asked for was never connected to"
    (red,) = p.wait_event("redirect")
    assert red.get("dest") == f"127.0.0.1:{asked.port}" and red.get("to") == f"127.0.0.1:{mta.port}", red
    assert red.get("client").startswith("127.0.0.142:"), red


def test_a_permitted_destination_is_relayed_and_the_list_end_permits(proxy, mta, tmp_path):
    spec = dest_map(tmp_path, "192.0.2.0/24 REJECT not there\n127.0.0.1 OK\n")
    p = proxy(mta.port, destination_restrictions=f"check_destination_access {spec}, reject")
    c = Client(p.port, source="127.0.0.143")
    assert c.greeting().code == 220 and c.cmd("EHLO pc1.customer.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert len(mta.wait_messages(1)) == 1
    q = proxy(mta.port, destination_restrictions="reject", policy_mode="warn")
    d = Client(q.port, source="127.0.0.144")
    assert d.greeting().code == 220, "policy_mode warn: the refusal is only logged"
    (w,) = q.wait_event("reject_warning", reason="destination")
    assert w.get("rule") == "destination_restrictions reject", w
