"""Keys and envelope encryption. No FastAPI and no database in here.

- :mod:`vrm.crypto.aead`: sealing record content with AES-256-GCM and
  associated data that binds a ciphertext to its place.
- :mod:`vrm.crypto.keystore`: where customers' root keys live (a
  :class:`KeyStore` protocol and the file-backed default).
"""
