package fs

// SetLeafMax sets how many objects a leaf holds before it is split, so
// that tests exercise splits with few keys. Call it before using f.
func SetLeafMax(f *FS, n int) { f.leafMax = n }

// SetAfterIndex sets a function that unlocked reads (Get, Stat) run
// between reading the index and opening the object's file.
func SetAfterIndex(f *FS, fn func()) { f.afterIndex = fn }

// SetAfterLeaf sets a function that List runs after reading a leaf and
// checking the index, before reading the entries of the leaf's objects.
func SetAfterLeaf(f *FS, fn func()) { f.afterLeaf = fn }
