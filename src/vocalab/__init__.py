"""vocalab: reproducible speech classification by how things are said."""
