package store

func crashChild(dir string) { select {} }
