"""Person-centred segmentation: detect people, follow each in a crop aligned by their own body, segment the crop.

A frame's path: `detector` (who is where) -> `tracker` (who is who, `roi` crops, `landmarks` + mask per crop,
`salience` picks who to protect) -> `model` (paste every person back into the frame).
"""
