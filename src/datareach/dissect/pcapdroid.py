"""The PCAPdroid trailer: which Android app (UID and name) sent or received each packet.

PCAPdroid (https://github.com/emanuele-f/PCAPdroid) captures through a VPN interface, so its
packets are raw IP. With its "pcapdroid_trailer" option (User Guide, advanced_features §4.5) it
instead writes LINKTYPE_ETHERNET (1) records laid out like this::

    [ Ethernet 14 B | IP packet | 0-3 zero bytes | trailer 32 B ]

* Ethernet header: both MAC addresses all zero, EtherType 0x0800 or 0x86DD chosen from the IP
  version nibble of the packet.
* Padding: ``(-(14 + len(ip_packet))) & 3`` zero bytes so the trailer starts 4-byte aligned
  (the whole frame length is therefore a multiple of 4).
* Trailer (``pcapdroid_trailer_t``, packed, 32 bytes)::

      offset  size  field
      0       4     magic   0x01072021, big-endian (htonl)
      4       4     uid     int32, big-endian (htonl); -1 when unknown
      8       20    appname char[20]: the app's name, at most 19 bytes, NUL-terminated and
                            zero-filled (memset 0, then strncpy(buf, name, 19); buf[19] = 0).
                            The name is Android's app label (AppDescriptor.getName()), in
                            modified UTF-8, so a multi-byte character may be cut at byte 19.
      28      4     fcs     CRC-32 (the zlib/Ethernet polynomial, init and final xor 0xFFFFFFFF)
                            of the whole frame except these 4 bytes, stored in HOST byte order,
                            i.e. little-endian on Android: ``struct.pack("<I", zlib.crc32(frame[:-4]))``.

* The record's ``orig_len`` also counts the Ethernet header, padding and trailer. When adding
  them would exceed the snaplen PCAPdroid writes that packet without trailer *and without the
  Ethernet header*, so readers must only trust frames whose magic matches.

Only classic pcap carries it: in pcapng mode PCAPdroid writes its own custom blocks instead
(UID-to-package map) and raw-IP interfaces. The trailer is only meaningful for Ethernet link type
(PCAPdroid's own pcap reader, pcap_reader.c, looks for it only when ``dlt == ETHERNET`` and the
frame is longer than 14 + 32 bytes), which is what :data:`LINKTYPES` says.

Sources (repository emanuele-f/PCAPdroid):

* ``app/src/main/jni/core/pcap_dump.h`` -- ``pcapdroid_trailer_t`` {uint32 magic; int32 uid;
  char appname[20]; uint32 fcs} and the ``[ETH | IP | Payload | CustomData]`` comment;
* ``app/src/main/jni/core/pcap_dump.c`` -- ``dump_packet_pcap()``: zero-MAC Ethernet header,
  ``pre_trailer_padding``, ``htonl(PCAPDROID_TRAILER_MAGIC)``, ``htonl(uid)``,
  ``trailer->fcs = crc32(buffer, incl_len - 4, 0)`` (no byte swap);
* ``app/src/main/jni/core/crc32.c`` -- the slicing-by-4 CRC-32 (same value as ``zlib.crc32``);
* ``app/src/main/jni/core/pcapdroid.c`` -- ``get_appname_by_uid()`` (strncpy to bufsize-1);
* ``tools/pcapdroid.lua`` -- the Wireshark dissector: trailer = last 32 bytes, magic at
  offset 0, uid (int32) at 4, app name (20 bytes) at 8, FCS skipped;
* ``tools/udp_receiver.py`` -- ``PCAPDROID_TRAILER_SIZE = 32``.

(The oldest releases, 2021, had a 28-byte trailer with a 16-byte app name; current PCAPdroid and
its dissector use 32 bytes, which is what this module reads.)
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

#: The trailer's magic number, as it appears in the file (big-endian 0x01072021).
MAGIC: Final = b"\x01\x07\x20\x21"
#: Size of the trailer, FCS included.
TRAILER_LEN: Final = 32
#: Size of the app name field (19 bytes of name and a NUL at most).
APPNAME_LEN: Final = 20
#: Link types on which PCAPdroid writes the trailer (only Ethernet).
LINKTYPES: Final = frozenset({1})
#: Shortest frame that can carry the trailer: Ethernet header, trailer, at least one byte of IP.
MIN_FRAME: Final = 14 + TRAILER_LEN + 1

_UID: Final = struct.Struct(">i")


def split_trailer(frame: bytes) -> tuple[int, int | None, str | None]:
    """(length of the frame without the trailer, uid, app name), or (len(frame), None, None).

    Cheap on frames without a trailer: one length test and one 4-byte comparison at a fixed
    offset from the end. The returned length still includes the 0-3 alignment bytes between
    the IP packet and the trailer (the IP length field tells where the packet ends). The app
    name is ``""`` when PCAPdroid did not know it. The FCS is not checked (PCAPdroid's own
    reader does not check it either); see :func:`fcs_ok`.
    """
    n = len(frame)
    if n < MIN_FRAME or frame[n - 32 : n - 28] != MAGIC:
        return n, None, None
    uid = _UID.unpack_from(frame, n - 28)[0]
    raw = frame[n - 24 : n - 4]
    nul = raw.find(b"\x00")
    if nul >= 0:
        raw = raw[:nul]
    return n - TRAILER_LEN, uid, raw.decode("utf-8", "replace")


def fcs_ok(frame: bytes) -> bool:
    """Whether the last 4 bytes are the CRC-32 PCAPdroid computes over the rest of the frame."""
    if len(frame) < TRAILER_LEN:
        return False
    return int.from_bytes(frame[-4:], "little") == zlib.crc32(frame[:-4])
