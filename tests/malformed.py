"""The malformed-input corpus: corrupt copies of the synthetic datasets, and what each loader must say about them.

Every builder takes a pristine synthetic root (``sardata.synth.synthesize(key, ...)``), copies it, breaks one file
per kind of fault, and returns a :class:`Corpus`: the broken root, the number of samples that must still be ingested,
and for each broken file a piece of the reason the loader must report *with that file's path*. The tests in
``test_hardening.py`` ingest each corpus through :func:`sardata.load` and through the importer directly.

Faults: truncated and zero-byte images, PNG bytes behind a ``.tif``, NaN/inf/all-zero float patches, malformed XML,
entity-expansion XML (billion laughs: defusedxml must refuse it), boxes outside the image or inverted, unknown
classes, duplicate ids, ``../`` paths in annotation/CSV files, and zip archives with members escaping the target.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Classic entity-expansion bomb (10^9 "lol"s if expanded); defusedxml refuses entity declarations outright.
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10)
    )
    + b"]>\n<{root}>&lol9;</{root}>\n"
)


@dataclass
class Corpus:
    """A corrupted dataset root and what an ingest of it must report.

    Attributes:
        root: the dataset root to ingest.
        samples: how many samples a tolerant ingest must still produce.
        problems: broken file (absolute path string) → substring (lower case) of the reason naming it.
        notes: free-form facts the tests check (e.g. object counts).
    """

    root: Path
    samples: int
    problems: dict[str, str] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def expect(self, path: Path, reason: str) -> None:
        self.problems[str(Path(path).resolve())] = reason.lower()


# --------------------------------------------------------------------------------------------- primitive faults


def truncate(path: Path, keep: float = 0.3) -> None:
    """Cuts a file to ``keep`` of its bytes (an interrupted download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


#: (width, height) of the PNG that :func:`put_png_bytes` writes.
PNG_SHAPE = (16, 16)


def png_bytes(shape=PNG_SHAPE, dtype=np.uint8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, 7, dtype=dtype)).save(buffer, format="PNG")
    return buffer.getvalue()


def put_png_bytes(path: Path) -> None:
    """Replaces the file's content by a valid PNG, keeping its (lying) extension."""
    path.write_bytes(png_bytes())


def png_bomb(path: Path, side: int = 30000) -> None:
    """A PNG whose header claims ``side`` × ``side`` 8-bit pixels (900 M for the default) with almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (side + 1))  # one row; the decoder must refuse long before reading it
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def tiff_claiming(path: Path, height: int, width: int, keep: int = 4096) -> None:
    """A TIFF whose header declares ``height`` × ``width`` uint8 pixels but whose data stops after ``keep`` bytes
    (a truncated download of a large scene, or a deliberate memory bomb)."""
    import tifffile

    tifffile.imwrite(str(path), np.zeros((height, width), np.uint8))
    with open(path, "r+b") as f:
        f.truncate(keep)


def break_xml(path: Path) -> None:
    """Makes an XML file malformed: the last closing tag is cut off."""
    text = path.read_bytes().rstrip()
    path.write_bytes(text[: text.rfind(b"</")])


def billion_laughs(path: Path, root: str = "annotation") -> None:
    path.write_bytes(BILLION_LAUGHS.replace(b"{root}", root.encode()))


def refill_float_tiff(path: Path, value: float | None) -> None:
    """Rewrites a float TIFF with the same shape: all ``value``, or (None) half NaN and half +inf."""
    import tifffile

    array = tifffile.imread(str(path))
    if value is None:
        array = array.astype(np.float32)
        array.reshape(-1)[::2] = np.nan
        array.reshape(-1)[1::2] = np.inf
    else:
        array = np.full_like(array, value)
    tifffile.imwrite(str(path), array)


def voc_set(path: Path, tag: str, value, index: int = 0) -> None:
    """Sets the ``index``-th ``<tag>`` of a VOC XML file to ``value``."""
    text = path.read_text()
    matches = list(re.finditer(rf"<{re.escape(tag)}>[^<]*</{re.escape(tag)}>", text))
    m = matches[index]
    path.write_text(text[: m.start()] + f"<{tag}>{value}</{tag}>" + text[m.end():])


def voc_box(path: Path, index: int = 0) -> tuple[int, int, int, int]:
    text = path.read_text()
    return tuple(int(re.findall(rf"<{t}>(-?\d+)</{t}>", text)[index]) for t in ("xmin", "ymin", "xmax", "ymax"))


def voc_size(path: Path) -> tuple[int, int]:
    text = path.read_text()
    return int(re.search(r"<width>(\d+)</width>", text)[1]), int(re.search(r"<height>(\d+)</height>", text)[1])


def object_count(path: Path) -> int:
    return path.read_text().count("<object>")


def escaping_zip(path: Path, evil_name: str = "../escaped.txt") -> Path:
    """A zip with one good member and one whose name escapes the extraction directory."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dataset/readme.txt", "ok")
        zf.writestr(evil_name, "pwned")
    return path


def symlink_zip(path: Path) -> Path:
    """A zip whose member is a symbolic link (to /etc/passwd)."""
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("dataset/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    return path


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------------------------- per-dataset corpora


def _voc_objects(xmls) -> int:
    return sum(object_count(x) for x in xmls)


def ssdd(pristine: Path, tmp: Path) -> Corpus:
    """SSDD (VOC BBox): 6 images (5 train + 1 test). Breaks 4 images' files, 3 objects, and adds a duplicate id."""
    root = copy(pristine, tmp / "ssdd-bad")
    voc = root / "BBox_SSDD" / "voc_style"
    ann, img = voc / "Annotations_train", voc / "JPEGImages_train"
    xmls = sorted(ann.glob("*.xml"))
    assert len(xmls) >= 5, "the synthetic SSDD must have at least 5 training images"
    corpus = Corpus(root, samples=len(xmls) + 1)  # + the test image
    a, b, c, d, e = (x.stem for x in xmls[:5])
    truncate(img / f"{a}.jpg")
    corpus.expect(img / f"{a}.jpg", "cannot decode jpeg")
    zero_bytes(img / f"{b}.jpg")
    corpus.expect(img / f"{b}.jpg", "empty file")
    break_xml(ann / f"{c}.xml")
    corpus.expect(ann / f"{c}.xml", "malformed xml")
    billion_laughs(ann / f"{d}.xml")
    corpus.expect(ann / f"{d}.xml", "entit")
    corpus.samples -= 4
    # a <filename> that escapes the root: the loader pairs files by stem and must never open this path
    voc_set(ann / f"{e}.xml", "filename", "../../../../../../etc/passwd")
    # image e keeps its image but loses its bad objects: outside, inverted, unknown class
    xml = ann / f"{e}.xml"
    width, height = voc_size(xml)
    n_objects = object_count(xml)
    while object_count(xml) < 3:  # make room for three faults plus one good object
        text = xml.read_text()
        first = text[text.index("<object>"): text.index("</object>") + len("</object>")]
        xml.write_text(text.replace("</annotation>", first + "\n</annotation>"))
    text = xml.read_text()
    first = text[text.index("<object>"): text.index("</object>") + len("</object>")]
    xml.write_text(text.replace("</annotation>", first + "\n</annotation>"))  # the good one stays last
    n_objects = object_count(xml)
    voc_set(xml, "xmax", width + 40, index=0)
    xmin, ymin, xmax, ymax = voc_box(xml, 1)
    voc_set(xml, "xmin", xmax, index=1)
    voc_set(xml, "xmax", max(0, xmin - 1), index=1)  # xmax < xmin
    voc_set(xml, "name", "submarine", index=2)
    corpus.expect(xml, "outside")
    corpus.notes.update(image_with_bad_objects=e, objects_kept=n_objects - 3, bad_object_reasons=("outside", "degenerate", "unknown class"))
    # a duplicate id: the same annotation again in the test folder (train is read first and wins)
    test_ann = voc / "Annotations_test"
    shutil.copy(ann / f"{e}.xml", test_ann / f"{e}.xml")
    shutil.copy(img / f"{e}.jpg", voc / "JPEGImages_test" / f"{e}.jpg")
    corpus.notes["duplicate"] = str((test_ann / f"{e}.xml").resolve())
    corpus.expect(test_ann / f"{e}.xml", "also listed")
    return corpus


def ssdd_coco(pristine: Path, tmp: Path) -> Corpus:
    """SSDD (COCO style): a ``../`` file name, a duplicate annotation id, an unknown category."""
    root = copy(pristine, tmp / "ssdd-coco-bad")
    coco = root / "BBox_SSDD" / "coco_style"
    train_json = coco / "annotations" / "train.json"
    data = json.loads(train_json.read_text())
    images = data["images"]
    corpus = Corpus(root, samples=len(images) + 1)
    images[0]["file_name"] = "../../../../../etc/passwd"
    corpus.samples -= 1
    corpus.expect(train_json, "escapes")
    anns = data["annotations"]
    keep_image = images[1]["id"]
    mine = [a for a in anns if a["image_id"] == keep_image]
    dup = dict(mine[0])
    anns.append(dup)  # same id twice: both boxes must be kept (grouped by image)
    bad = dict(mine[0], id=max(a["id"] for a in anns) + 1, category_id=999)
    anns.append(bad)
    corpus.notes.update(image_file=images[1]["file_name"], boxes=len(mine) + 1)
    train_json.write_text(json.dumps(data))
    return corpus


def sar_aircraft(pristine: Path, tmp: Path) -> Corpus:
    root = copy(pristine, tmp / "aircraft-bad")
    ann, img = root / "Annotations", root / "JPEGImages"
    xmls = sorted(ann.glob("*.xml"))
    assert len(xmls) >= 4
    corpus = Corpus(root, samples=len(xmls))
    a, b, c, d = (x.stem for x in xmls[:4])
    put_png_bytes(img / f"{a}.jpg")  # PNG behind .jpg: readable, but its size contradicts the XML
    corpus.expect(img / f"{a}.jpg", "declares")
    billion_laughs(ann / f"{b}.xml")
    corpus.expect(ann / f"{b}.xml", "entit")
    truncate(img / f"{c}.jpg", keep=0.05)
    corpus.expect(img / f"{c}.jpg", "cannot decode")
    corpus.samples -= 3
    xml = ann / f"{d}.xml"
    n = object_count(xml)
    voc_set(xml, "name", "Concorde", index=0)
    width, _ = voc_size(xml)
    if n > 1:
        voc_set(xml, "xmin", width + 5, index=1)
    corpus.expect(xml, "unknown class")
    corpus.notes.update(image_with_bad_objects=d, objects_kept=max(0, n - 2))
    return corpus


def opensarship(pristine: Path, tmp: Path) -> Corpus:
    """OpenSARShip: NaN/inf and all-zero float chips (kept, with finite display), a truncated chip, PNG bytes in a
    Patch .tif (rejected: not a float chip), a billion-laughs Ship.xml (scene kept, without AIS), a malformed scene
    metadata file."""
    root = copy(pristine, tmp / "opensarship-bad")
    patches = sorted(root.rglob("Patch/*.tif"))
    assert len(patches) >= 5
    corpus = Corpus(root, samples=len(patches))
    nan_chip, zero_chip, cut_chip, png_chip = patches[:4]
    refill_float_tiff(nan_chip, None)
    refill_float_tiff(zero_chip, 0.0)
    corpus.notes.update(nan_chip=str(nan_chip), zero_chip=str(zero_chip))
    truncate(cut_chip, keep=0.2)
    corpus.expect(cut_chip, "cannot decode tiff")
    put_png_bytes(png_chip)
    corpus.expect(png_chip, "expected a float32 chip")
    corpus.samples -= 2
    # a Ship.xml bomb in a scene none of the above are in (the chips stay, labelled from their type name)
    bomb_scene = next(p.parent.parent for p in patches[4:] if p.parent.parent not in {q.parent.parent for q in patches[:4]})
    billion_laughs(bomb_scene / "Ship.xml", root="ShipList")
    corpus.expect(bomb_scene / "Ship.xml", "entit")
    corpus.notes["bomb_scene"] = bomb_scene.name
    # a second, different <ship> entry for the NaN chip's centre (a conflicting duplicate id)
    ship_xml = nan_chip.parent.parent / "Ship.xml"
    key = re.search(r"_x(\d+)_y(\d+)", nan_chip.name).groups()
    text = ship_xml.read_bytes().decode()
    blocks = re.findall(r"<ship>.*?</ship>", text, re.DOTALL)
    block = next(b for b in blocks if f"<Center_x>{key[0]}</Center_x>" in b and f"<Center_y>{key[1]}</Center_y>" in b)
    corpus.notes["nan_chip_mmsi"] = int(re.search(r"<MMSI>(\d+)</MMSI>", block)[1])
    clash = re.sub(r"<MMSI>\d+</MMSI>", "<MMSI>999999999</MMSI>", block)
    close = text.rindex("ShipList>") - 2  # "</ShipList>" or the v2.0 "<\\ShipList>"
    ship_xml.write_bytes((text[:close] + "\t" + clash + "\r\n" + text[close:]).encode())
    corpus.expect(ship_xml, "two different <ship> entries")
    # a malformed scene metadata file elsewhere: the product type then comes from the folder name
    other_scene = next(s for s in sorted({p.parent.parent for p in patches}) if s != bomb_scene)
    metadata = next(p for p in sorted(other_scene.glob("*.xml")) if p.name != "Ship.xml")
    break_xml(metadata)
    corpus.expect(metadata, "unreadable scene metadata")
    return corpus


def fusar(pristine: Path, tmp: Path) -> Corpus:
    """FUSAR-Ship: truncated and zero-byte chips, PNG bytes in a .tiff (8-bit grey: readable, kept), a meta.csv row
    whose path escapes the root, a duplicate meta.csv id, a row with a non-numeric MMSI."""
    root = copy(pristine, tmp / "fusar-bad")
    chips = sorted(root.rglob("*.tiff"))
    assert len(chips) >= 5
    corpus = Corpus(root, samples=len(chips))
    truncate(chips[0], keep=0.1)
    corpus.expect(chips[0], "cannot decode tiff")
    zero_bytes(chips[1])
    corpus.expect(chips[1], "empty file")
    corpus.samples -= 2
    put_png_bytes(chips[2])
    corpus.notes["png_chip"] = str(chips[2])
    meta = root / "meta.csv"
    lines = meta.read_bytes().decode().split("\r\n")
    header = lines[0].split("\t")
    path_col, id_col, mmsi_col = header.index("path"), header.index("id"), header.index("mmsi")
    rows = [line.split("\t") for line in lines[1:] if line]
    by_id = {r[id_col]: r for r in rows}
    escape = list(by_id[chips[3].stem])
    escape[path_col] = "..\\..\\..\\etc"
    bad_mmsi = list(by_id[chips[2].stem])
    bad_mmsi[mmsi_col] = "not-a-number"
    duplicate = list(by_id[chips[4].stem])  # the same id again, another MMSI: counted, the first row wins
    duplicate[mmsi_col] = "123456789"
    rows = [r for r in rows if r[id_col] not in (chips[3].stem, chips[2].stem)] + [escape, bad_mmsi, duplicate]
    meta.write_bytes("\r\n".join(["\t".join(header)] + ["\t".join(r) for r in rows] + [""]).encode())
    corpus.expect(meta, "escapes")  # reported as "<meta.csv> line N"
    corpus.notes.update(escaped_chip=chips[3].stem, bad_mmsi_chip=chips[2].stem, duplicate_chip=chips[4].stem,
                        duplicate_chip_mmsi=int(by_id[chips[4].stem][mmsi_col]))
    return corpus


def whu_opt_sar(pristine: Path, tmp: Path, patch_size: int) -> Corpus:
    """WHU-OPT-SAR: a truncated SAR tile, PNG bytes in an optical .tif, a ``../`` name in the split file."""
    root = copy(pristine, tmp / "whu-bad")
    tiles = sorted(p.stem for p in (root / "sar").glob("*.tif"))
    assert len(tiles) >= 3, "need three tiles"
    import tifffile

    def patches(tile):
        h, w = tifffile.TiffFile(str(root / "lbl" / f"{tile}.tif")).series[0].shape[:2]
        return (h // patch_size) * (w // patch_size)

    corpus = Corpus(root, samples=sum(patches(t) for t in tiles))
    truncate(root / "sar" / f"{tiles[0]}.tif", keep=0.5)
    corpus.expect(root / "sar" / f"{tiles[0]}.tif", "truncated")
    put_png_bytes(root / "optical" / f"{tiles[1]}.tif")
    corpus.expect(root / "optical" / f"{tiles[1]}.tif", "not a tiff")
    corpus.samples -= patches(tiles[0]) + patches(tiles[1])
    # a "../" name in the split file names no tile: it must not be opened (and the listed tiles keep their split)
    split_file = root / "The division of the dataset.txt"
    if split_file.is_file():
        text = split_file.read_bytes()
        split_file.write_bytes(text.replace(b"test:", b"../../../etc/passwd\r\ntest:", 1))
    return corpus
