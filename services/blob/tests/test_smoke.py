import hashlib
import os


async def test_upload_list_download_through_gateway(user, tmp_path):
    client, _ = user
    source = tmp_path / "photo.jpg"
    payload = os.urandom(20 * 1024 * 1024 + 12345)
    source.write_bytes(payload)
    node = await client.files.upload(source, content_type="image/jpeg")
    assert node.size == len(payload)
    assert node.sha256 == hashlib.sha256(payload).hexdigest()
    names = [n.name for n in await client.files.ls()]
    assert "photo.jpg" in names
    back = tmp_path / "back.jpg"
    await client.files.download(node.node_id, back)
    assert back.read_bytes() == payload
    again = await client.files.upload(source, name="copy.jpg")
    assert again.sha256 == node.sha256
    usage = await client.files.usage()
    assert usage.used == len(payload) and usage.reserved == 0
