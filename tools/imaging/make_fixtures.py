#!/usr/bin/python3
"""Make the fixtures in imaging/testdata/ and their expected outputs.

Run with Debian's Python and PIL (python3-pil) and libjpeg-turbo-progs:

    /usr/bin/python3 tools/imaging/make_fixtures.py

Inputs are drawn with PIL; expected outputs come from tools independent of
kediff: djpeg (libjpeg-turbo) for JPEG decodes, PIL for EXIF transposition,
alpha compositing, format conversions and resizing. Everything is
deterministic, so rerunning reproduces the same files.
"""
import io
import os
import random
import struct
import subprocess
import zlib

from PIL import Image, ImageDraw, ImageFilter, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "imaging", "testdata")
B = Image.Resampling.BILINEAR


def photo(w, h, seed):
    """A smooth, textured, photo-like RGB image."""
    rnd = random.Random(seed)
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = (int(255 * x / w), int(255 * y / h), int(128 + 100 * ((x + y) % 64) / 64 - 50))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = rnd.randrange(w), rnd.randrange(h)
        r = rnd.randrange(4, max(5, w // 4))
        d.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    for _ in range(6):
        d.line([rnd.randrange(w), rnd.randrange(h), rnd.randrange(w), rnd.randrange(h)], fill=(255, 255, 255), width=2)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.effect_noise((w, h), 12).convert("RGB")
    return Image.blend(im, noise, 0.12)


def path(name):
    return os.path.join(OUT, name)


def save_bytes(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def djpeg(src, dst, scale=None):
    args = ["djpeg", "-ppm"]
    if scale:
        args += ["-scale", scale]
    with open(path(dst), "wb") as f:
        subprocess.run(args + [path(src)], stdout=f, check=True)


def tiff_orientation(o, big_endian):
    """A minimal TIFF/EXIF block holding only IFD0 with Orientation = o."""
    e = ">" if big_endian else "<"
    hdr = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    # one entry: tag 0x0112, type SHORT, count 1, value left-justified
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", o, 0) + struct.pack(e + "I", 0)
    return hdr + ifd


def png_chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def png16(w, h, rgba):
    """A 16-bit RGB(A) PNG written by hand (PIL cannot write one)."""
    ch = 4 if rgba else 3
    raw = bytearray()
    vals = []
    for y in range(h):
        raw.append(0)
        row = []
        for x in range(w):
            r = (x * 65535) // (w - 1)
            g = (y * 65535) // (h - 1)
            b = ((x * 7 + y * 13) * 257) % 65536
            a = ((x + y) * 65535) // (w + h - 2)
            px = (r, g, b, a)[:ch]
            row.append(px)
            raw += b"".join(struct.pack(">H", v) for v in px)
        vals.append(row)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 6 if rgba else 2, 0, 0, 0)
    data = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(raw))) + png_chunk(b"IEND", b"")
    # expected: high byte, then alpha composited onto white at 8 bits
    exp = Image.new("RGB", (w, h))
    for y in range(h):
        for x in range(w):
            px = vals[y][x]
            c = [v >> 8 for v in px[:3]]
            if rgba:
                a = px[3] >> 8
                c = [(v * a + 255 * (255 - a) + 127) // 255 for v in c]
            exp.putpixel((x, y), tuple(c))
    return b"\x89PNG\r\n\x1a\n" + data, exp


def on_white(im):
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, im).convert("RGB")


def main():
    os.makedirs(OUT, exist_ok=True)

    # JPEG decodes: djpeg is the reference (same library as the fast path).
    photo(640, 480, 1).save(path("photo.jpg"), quality=90)
    small = photo(96, 72, 2)
    small.save(path("small.jpg"), quality=92)
    djpeg("small.jpg", "small.ppm")
    djpeg("small.jpg", "small_scale_1_2.ppm", "1/2")
    small.save(path("progressive.jpg"), quality=90, progressive=True)
    djpeg("progressive.jpg", "progressive.ppm")
    small.convert("L").save(path("gray.jpg"), quality=90)
    djpeg("gray.jpg", "gray.ppm")  # djpeg writes PGM for grayscale
    cm = small.convert("CMYK")
    cm.save(path("cmyk.jpg"), quality=95)
    Image.open(path("cmyk.jpg")).convert("RGB").save(path("cmyk_expected.png"))

    # EXIF orientations: an asymmetric 48x32 image tagged 1..8; even
    # orientations use little-endian TIFF, odd ones big-endian.
    base = photo(48, 32, 3)
    d = ImageDraw.Draw(base)
    d.rectangle([0, 0, 15, 7], fill=(255, 0, 0))
    for o in range(1, 9):
        exif = b"Exif\x00\x00" + tiff_orientation(o, big_endian=o % 2 == 1)
        name = "orient_%d.jpg" % o
        base.save(path(name), quality=95, exif=exif)
        ImageOps.exif_transpose(Image.open(path(name))).convert("RGB").save(path("orient_%d_expected.png" % o))
    # the same in a PNG eXIf chunk
    base.save(path("orient_6.png"), exif=b"Exif\x00\x00" + tiff_orientation(6, False))
    ImageOps.exif_transpose(Image.open(path("orient_6.png"))).convert("RGB").save(path("orient_6_png_expected.png"))

    # PNG variants
    rgba = photo(40, 30, 4).convert("RGBA")
    a = Image.linear_gradient("L").resize((40, 30))
    rgba.putalpha(a)
    rgba.save(path("alpha.png"))
    on_white(rgba).save(path("alpha_expected.png"))
    la = rgba.convert("LA")
    la.save(path("gray_alpha.png"))
    on_white(la).save(path("gray_alpha_expected.png"))
    pal = photo(40, 30, 5).quantize(64)
    pal.info["transparency"] = 0
    pal.save(path("palette.png"), transparency=0)
    on_white(Image.open(path("palette.png"))).save(path("palette_expected.png"))
    photo(40, 30, 6).convert("L").save(path("gray.png"))
    Image.open(path("gray.png")).convert("RGB").save(path("gray_png_expected.png"))
    for rgba16 in (False, True):
        data, exp = png16(40, 30, rgba16)
        n = "png16_rgba" if rgba16 else "png16_rgb"
        save_bytes(n + ".png", data)
        exp.save(path(n + "_expected.png"))

    # GIF: two frames, the first is expected
    f1 = photo(40, 30, 7).quantize(32)
    f2 = photo(40, 30, 8).quantize(32)
    f1.save(path("anim.gif"), save_all=True, append_images=[f2], duration=100, loop=0)
    Image.open(path("anim.gif")).convert("RGB").save(path("anim_expected.png"))

    # WebP: lossy, lossy with alpha, lossless
    photo(40, 30, 9).save(path("lossy.webp"), quality=90)
    Image.open(path("lossy.webp")).convert("RGB").save(path("lossy_webp_expected.png"))
    rgba.save(path("alpha.webp"), quality=90)
    on_white(Image.open(path("alpha.webp"))).save(path("alpha_webp_expected.png"))
    photo(40, 30, 10).save(path("lossless.webp"), lossless=True)
    Image.open(path("lossless.webp")).convert("RGB").save(path("lossless_webp_expected.png"))

    # Resizing: a lossless 200x150 source and PIL's BILINEAR (antialiased
    # triangle) outputs for each mode; geometry as in imaging's package doc.
    src = photo(200, 150, 11)
    src.save(path("resize_src.png"))
    src.resize((64, 64), B, box=(25, 0, 175, 150)).save(path("resize_center_crop_64.png"))
    src.resize((85, 64), B).save(path("resize_keep_ratio_64.png"))
    src.resize((64, 48), B).save(path("resize_keep_ratio_largest_64.png"))
    bord = Image.new("RGB", (64, 64), (0, 0, 0))
    bord.paste(src.resize((64, 48), B), (0, 8))
    bord.save(path("resize_border_64.png"))
    src.resize((160, 160), B, box=(25, 0, 175, 150)).save(path("resize_center_crop_160.png"))

    # Bad input
    jp = open(path("photo.jpg"), "rb").read()
    save_bytes("truncated.jpg", jp[: len(jp) // 2])
    pn = bytearray(open(path("resize_src.png"), "rb").read())
    i = pn.index(b"IDAT") + 40
    pn[i : i + 16] = b"\x00" * 16  # breaks the zlib stream and the CRC
    save_bytes("corrupt.png", bytes(pn))
    save_bytes("text.txt", b"<html><body>404 Not Found</body></html>\n")
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    save_bytes("bomb.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr))


if __name__ == "__main__":
    main()
