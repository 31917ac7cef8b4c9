"""Reading hostile input and writing files: safe XML and archives, detection, split, facts, atomic writes."""
