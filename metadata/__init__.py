"""The metadata service: file status records and their stores."""
